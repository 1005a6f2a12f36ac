"""Report by exception via a real broker: a flat signal sends only heartbeats, a step at once."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, write_config

pytestmark = pytest.mark.integration

DEVICE = "dr-jj-000077"


def test_flat_sends_heartbeats_and_a_step_sends_at_once(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"xh/v1/+/+/{DEVICE}/telemetry", "rec-rbe")
    defaults = {
        "interval_s": 0.1,
        "max_silence_s": 2.0,
        "median_window": 1,
        "deadbands": {"level_m": 0.05, "battery_v": 0.1},
    }
    config = write_config(
        tmp_path / "edge.toml", broker.url, DEVICE, tmp_path / "state", defaults=defaults
    )
    step_at_s = time.time() + 6.0
    agent = AgentProcess(config, tmp_path / "agent.log", {"XIUHUA_TEST_STEP_AT_S": str(step_at_s)})
    agent.start()
    try:
        wait_until(
            lambda: (
                agent.check() or any(t.readings["level_m"] == 2.0 for t in recorder.telemetry())
            ),
            timeout_s=60,
            message="the step reported",
        )
    finally:
        agent.terminate()
        recorder.close()
    sent = recorder.telemetry()
    flat = [t for t in sent if t.readings["level_m"] == 1.0]
    step = next(t for t in sent if t.readings["level_m"] == 2.0)
    gaps_s = [(b.ts - a.ts) / 1000 for a, b in itertools.pairwise(flat)]
    # Sampling at 10 Hz: two flat seconds would be ~20 messages; heartbeats send one.
    assert flat
    assert all(gap >= 1.95 for gap in gaps_s), gaps_s
    assert len(flat) <= (step.ts - flat[0].ts) / 2000 + 1
    # The step is reported by the first sample that sees it, well before the next heartbeat
    # (2 s); the bound leaves room for a loaded machine's scheduling. ts is whole milliseconds,
    # truncated: compare against the step time truncated the same way.
    assert int(step_at_s * 1000) <= step.ts <= int(step_at_s * 1000) + 1000
