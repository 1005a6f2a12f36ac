"""The broker is down for 60 s while the agent samples, and the agent is SIGKILLed mid-outage.

Every reading made during the outage, by both boots, must arrive after the broker returns: in
order, marked historical, with no gap in any boot's sequence numbers. Duplicates are allowed only
as exact repeats of a reading (same device, boot, seq, ts and values), which the ingester's
InfluxDB write turns into one point.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from telemetry_core.schema import Telemetry
from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, spool_rows_before, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = "dr-jj-000042"
OUTAGE_S = 60.0


def _by_boot(messages: list[Telemetry]) -> dict[str, list[Telemetry]]:
    boots: dict[str, list[Telemetry]] = defaultdict(list)
    for message in messages:
        boots[message.boot_id].append(message)
    return boots


def _complete(messages: list[Telemetry]) -> bool:
    seqs = {m.seq for m in messages}
    return bool(seqs) and seqs == set(range(max(seqs) + 1))


def test_outage_with_sigkill_loses_nothing(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"xh/v1/+/+/{DEVICE}/#", "rec-outage")
    state = tmp_path / "state"
    config = write_config(tmp_path / "edge.toml", broker.url, DEVICE, state)
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or len(recorder.telemetry()) >= 5,
            timeout_s=60,
            message="live readings",
        )
        broker.stop()  # SIGTERM: Mosquitto saves sessions, so the recorder's queue survives
        down_at = time.monotonic()
        wait_until(
            lambda: time.monotonic() - down_at >= OUTAGE_S / 2,
            timeout_s=OUTAGE_S,
            interval_s=0.5,
            message="first half of the outage",
        )
        agent.kill()
        agent.start()
        wait_until(
            lambda: time.monotonic() - down_at >= OUTAGE_S,
            timeout_s=OUTAGE_S,
            interval_s=0.5,
            message="second half of the outage",
        )
        back_at_s = time.time()
        broker.start()
        wait_until(
            lambda: spool_rows_before(state / "spool.sqlite3", back_at_s) == 0,
            timeout_s=120,
            message="backlog replayed and acknowledged",
        )
        wait_until(
            lambda: (
                len(_by_boot(recorder.telemetry())) == 2
                and all(_complete(m) for m in _by_boot(recorder.telemetry()).values())
            ),
            timeout_s=60,
            message="every boot's sequence complete at the subscriber",
        )
    finally:
        agent.terminate()
        recorder.close()

    received = recorder.telemetry()
    boots = _by_boot(received)
    first, second = sorted(boots.values(), key=lambda ms: ms[0].ts)
    historical = [m for m in received if m.historical]
    # 5 Hz sampling: about 150 readings per half of the outage.
    assert sum(m.boot_id == first[0].boot_id for m in historical) >= 100
    assert sum(m.boot_id == second[0].boot_id for m in historical) >= 100
    for messages in boots.values():
        replayed = [m.seq for m in messages if m.historical]
        assert replayed == sorted(replayed), "historical readings arrive in order"
        by_seq: dict[int, set[tuple[int, tuple[tuple[str, float], ...]]]] = defaultdict(set)
        for m in messages:
            by_seq[m.seq].add((m.ts, tuple(sorted(m.readings.items()))))
        assert all(len(v) == 1 for v in by_seq.values()), "a repeat is always the same reading"
    outage_readings = [
        m
        for m in received
        if back_at_s * 1000 - OUTAGE_S * 1000 + 2000 < m.ts < back_at_s * 1000 - 1000
    ]
    assert outage_readings
    assert all(m.historical for m in outage_readings)
