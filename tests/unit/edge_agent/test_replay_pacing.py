"""Replay is paced in wall-clock seconds, whatever the simulation speed (the broker is real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import AgentConfig, ConfigStore, DeviceRuntime, EdgeAgent, ReplayPolicy, Spool
from telemetry_core.clock import ManualClock, ScaledClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.schema import Telemetry, decode
from telemetry_core.topics import Channel, Topic
from tests.unit.edge_agent.fakes import FakeTransport, ScriptedDriver

DEVICE = "dr-jj-000001"
START_S = 1_764_000_000.0


@pytest.mark.parametrize("speed", [1.0, 100.0])
def test_a_backlog_replays_at_the_rate_per_wall_second_at_any_speed(
    tmp_path: Path, speed: float
) -> None:
    wall = ManualClock(start_s=START_S)
    clock = ScaledClock(speed, start_s=START_S, base=wall)
    topic = Topic("jiaojiang", DeviceKind.DRAIN, DEVICE, Channel.TELEMETRY)
    config = AgentConfig(interval_s=speed * 0.1, max_silence_s=1000 * speed, median_window=1)
    store = ConfigStore(tmp_path / "config.json", DeviceKind.DRAIN, config)
    driver = ScriptedDriver(DEVICE, lambda t: (t - START_S) / 1e4)
    runtime = DeviceRuntime(topic, driver, store, clock, "fw-1")
    transport = FakeTransport()
    policy = ReplayPolicy(rate_per_s=10, burst=10, max_inflight=1000)
    agent = EdgeAgent([runtime], transport, Spool(tmp_path / "spool.db"), clock,
                      policy=policy, speed=speed)  # fmt: skip
    agent.start()
    for _ in range(300):  # 30 wall seconds offline, a reading every 0.1 wall s
        agent.step(transport.events(0))
        wall.advance(0.1)
    assert agent.backlog >= 290
    transport.connect()
    for _ in range(20):  # then 2 wall seconds connected, every PUBACK coming at once
        agent.step(transport.events(0))
        transport.ack_all()
        wall.advance(0.1)
    replayed = [
        t for t in (decode(p, Telemetry) for p in transport.on_channel("telemetry")) if t.historical
    ]
    # The burst plus 10 a wall second for 2 s; at 100x, simulated seconds would allow 2,000.
    assert 10 + 18 <= len(replayed) <= 10 + 20
