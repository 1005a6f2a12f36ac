"""A device's own link (``LinkProbe``): held in the spool while down, replayed when back.

A gateway of two devices over one fake transport and a manual clock; device A's link is cut
for a window of its own, device B never is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from structlog.testing import capture_logs

from edge_agent import (
    LINK_DOWN_REASON,
    AgentConfig,
    ConfigStore,
    DeviceRuntime,
    EdgeAgent,
    ReplayPolicy,
    Spool,
    SpoolLimits,
)
from telemetry_core.clock import ManualClock
from telemetry_core.driver import LinkProbe, SensorDriver
from telemetry_core.kinds import DeviceKind
from telemetry_core.schema import Status, Telemetry, decode
from telemetry_core.topics import Channel, Topic
from tests.unit.edge_agent.fakes import FakeTransport, LinkDriver, ScriptedDriver

T0 = 1_764_000_000.0
A, B = "dr-jj-000001", "dr-jj-000002"
ONE_HZ = AgentConfig(interval_s=1, max_silence_s=100, median_window=1)


def _ramp(t: float) -> float:
    return (t - T0) / 100.0


def _cut(start: float, end: float) -> Callable[[float], bool | None]:
    return lambda t: not (T0 + start <= t < T0 + end)


@dataclass
class Gateway:
    agent: EdgeAgent
    transport: FakeTransport
    clock: ManualClock
    spool: Spool

    def run(self, seconds: int, *, ack: bool = True) -> None:
        for _ in range(seconds):
            self.agent.step(self.transport.events(0))
            if ack:
                self.transport.ack_all()
            self.clock.advance(1.0)

    def telemetry(self, device_id: str) -> list[Telemetry]:
        sent = [decode(p, Telemetry) for p in self.transport.on_channel("telemetry")]
        return [t for t in sent if t.device_id == device_id]

    def statuses(self, device_id: str) -> list[Status]:
        found = [decode(p, Status) for p in self.transport.on_channel("status")]
        return [s for s in found if s.device_id == device_id]


def _gateway(
    tmp_path: Path,
    link_a: Callable[[float], bool | None],
    rate: float = 5,
    limits: SpoolLimits | None = None,
) -> Gateway:
    clock = ManualClock(start_s=T0)
    drivers: list[SensorDriver] = [LinkDriver(A, _ramp, link_a), ScriptedDriver(B, _ramp)]
    runtimes = [
        DeviceRuntime(
            Topic("jiaojiang", DeviceKind.DRAIN, d.device_id, Channel.TELEMETRY),
            d,
            ConfigStore(tmp_path / f"{d.device_id}.json", DeviceKind.DRAIN, ONE_HZ),
            clock,
            "fw-1",
        )
        for d in drivers
    ]
    transport = FakeTransport()
    spool = Spool(tmp_path / "spool.db", limits)
    policy = ReplayPolicy(rate_per_s=rate, burst=int(rate))
    agent = EdgeAgent(runtimes, transport, spool, clock, policy=policy)
    agent.start()
    transport.connect()
    return Gateway(agent, transport, clock, spool)


def test_the_simulated_driver_shape_is_a_link_probe() -> None:
    assert isinstance(LinkDriver(A, _ramp, lambda _t: True), LinkProbe)
    assert not isinstance(ScriptedDriver(A, _ramp), LinkProbe)


def test_a_cut_device_is_held_while_others_flow_then_replayed_in_order(tmp_path: Path) -> None:
    gw = _gateway(tmp_path, _cut(5, 15))
    gw.run(15)
    assert gw.agent.links_down == frozenset({A})
    # Nothing of A went out during the cut (its first 5 readings did, live); B never stopped.
    assert [t.seq for t in gw.telemetry(A)] == [0, 1, 2, 3, 4]
    assert [t.seq for t in gw.telemetry(B)] == list(range(15))
    assert not any(t.historical for t in gw.telemetry(B))
    held = gw.spool.between(0, gw.spool.max_id(), 100, device_id=A)
    assert [decode(r.payload, Telemetry).seq for r in held] == list(range(5, 15))
    offline = gw.statuses(A)[-1]
    assert (offline.state, offline.reason) == ("offline", LINK_DOWN_REASON)

    gw.run(10)
    assert gw.agent.links_down == frozenset()
    assert gw.statuses(A)[-1].state == "online"
    sent = gw.telemetry(A)
    historical = [t.seq for t in sent if t.historical]
    assert historical == list(range(5, 15))  # every held reading, in order, marked historical
    assert sorted(t.seq for t in sent) == list(range(25))  # nothing lost, nothing twice
    assert all(not t.historical for t in sent if t.seq >= 15)  # new readings go live
    assert len(gw.spool) == 2  # only the two readings of the last step await their PUBACKs


def test_replay_after_the_link_returns_is_rate_limited(tmp_path: Path) -> None:
    gw = _gateway(tmp_path, _cut(0, 30), rate=4)
    gw.run(30)
    gw.run(1)  # the sample at t=30 finds the link back; this turn replays one burst
    historical = [t for t in gw.telemetry(A) if t.historical]
    assert len(historical) == 4  # the bucket's burst, not the 30 held readings at once
    gw.run(10)
    assert [t.seq for t in gw.telemetry(A) if t.historical] == list(range(30))


def test_a_device_cut_during_a_broker_outage_stays_held_after_the_broker_is_back(
    tmp_path: Path,
) -> None:
    gw = _gateway(tmp_path, _cut(3, 12))
    gw.run(1)
    gw.transport.disconnect()
    gw.run(6, ack=False)  # broker gone at t=1..6; A's link goes at t=3
    gw.transport.connect()
    gw.run(3)  # broker back at t=7: B's backlog replays, A's stays held
    assert [t.seq for t in gw.telemetry(B) if t.historical] == list(range(1, 7))
    assert max(t.seq for t in gw.telemetry(A)) == 0
    assert gw.statuses(A)[-1].reason == LINK_DOWN_REASON  # re-stated on the new connection
    gw.run(10)  # A's link back at t=12
    sent = gw.telemetry(A)
    assert [t.seq for t in sent if t.historical] == list(range(1, 12))
    assert sorted(t.seq for t in sent) == list(range(20))


def test_a_broker_outage_during_a_device_replay_hands_it_to_the_broker_pass(
    tmp_path: Path,
) -> None:
    gw = _gateway(tmp_path, _cut(0, 20), rate=2)
    gw.run(22)  # A is back at t=20; its 20 held readings replay at 2/s
    gw.transport.disconnect()
    gw.run(5, ack=False)
    gw.transport.connect()
    gw.run(30)
    sent = gw.telemetry(A)
    replayed = [t.seq for t in sent if t.historical]
    assert replayed == sorted(replayed)
    assert sorted(t.seq for t in sent) == list(range(57))  # nothing lost, nothing twice
    assert set(range(20)) <= set(replayed)


def test_a_link_that_flaps_during_its_replay_loses_and_repeats_nothing(tmp_path: Path) -> None:
    def link(t: float) -> bool:
        rel = t - T0
        return not (2 <= rel < 20 or 22 <= rel < 26)

    gw = _gateway(tmp_path, link, rate=2)
    gw.run(40)
    sent = gw.telemetry(A)
    seqs = [t.seq for t in sent]
    assert sorted(seqs) == list(range(40))
    assert len(seqs) == len(set(seqs))
    assert [t.seq for t in sent if t.historical] == sorted(t.seq for t in sent if t.historical)


def test_a_failing_probe_counts_as_up_and_is_logged_once(tmp_path: Path) -> None:
    with capture_logs() as logs:
        gw = _gateway(tmp_path, lambda _t: None)
        gw.run(5)
    assert [t.seq for t in gw.telemetry(A)] == list(range(5))
    assert [e["event"] for e in logs].count("link_probe_failed") == 1


def test_held_messages_may_be_evicted_when_the_spool_is_full(tmp_path: Path) -> None:
    gw = _gateway(tmp_path, _cut(0, 100), limits=SpoolLimits(max_rows=4))
    gw.run(8)
    # A's held readings are not in flight, so the bounds apply to them as to offline ones:
    # the oldest go, and the drop is counted for A (to be reported once it is back).
    held = gw.spool.between(0, gw.spool.max_id(), 100, device_id=A)
    assert [decode(r.payload, Telemetry).seq for r in held] == [5, 6, 7]
    assert gw.spool.drop_counts() == {A: {"routine": 5}}
    assert [t.seq for t in gw.telemetry(B)] == list(range(8))
