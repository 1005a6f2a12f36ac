"""The agent loop with a fake transport and a manual clock: no network, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from edge_agent import (
    AgentConfig,
    ConfigStore,
    DeviceRuntime,
    EdgeAgent,
    ReplayPolicy,
    Spool,
    SpoolLimits,
    Threshold,
    TransportEvent,
)
from telemetry_core.clock import ManualClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.schema import (
    CONTRACT_VERSION,
    Command,
    CommandAck,
    Event,
    Status,
    Telemetry,
    decode,
    encode,
)
from telemetry_core.topics import Channel, Topic
from tests.unit.edge_agent.fakes import FakeTransport, ScriptedDriver

DEVICE = "dr-jj-000001"
BASE = f"xh/v1/jiaojiang/drain/{DEVICE}"
ONE_HZ = AgentConfig(interval_s=1, max_silence_s=100, median_window=1)


@dataclass
class Rig:
    agent: EdgeAgent
    transport: FakeTransport
    clock: ManualClock
    runtime: DeviceRuntime
    spool: Spool

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.agent.step(self.transport.events(0))
            self.clock.advance(1.0)

    def telemetry(self) -> list[Telemetry]:
        return [decode(p, Telemetry) for p in self.transport.on_channel("telemetry")]

    def events(self) -> list[Event]:
        return [decode(p, Event) for p in self.transport.on_channel("event")]

    def acks(self) -> list[CommandAck]:
        return [decode(p, CommandAck) for p in self.transport.on_channel("cmd_ack")]


def _rig(
    tmp_path: Path,
    level: Callable[[float], float | None],
    config: AgentConfig = ONE_HZ,
    *,
    limits: SpoolLimits | None = None,
    policy: ReplayPolicy | None = None,
    extra: dict[str, float] | None = None,
) -> Rig:
    clock = ManualClock(start_s=1_764_000_000.0)
    topic = Topic("jiaojiang", DeviceKind.DRAIN, DEVICE, Channel.TELEMETRY)
    store = ConfigStore(tmp_path / "config.json", DeviceKind.DRAIN, config)
    runtime = DeviceRuntime(topic, ScriptedDriver(DEVICE, level, extra), store, clock, "fw-1")
    transport = FakeTransport()
    spool = Spool(tmp_path / "spool.db", limits)
    agent = EdgeAgent(
        [runtime], transport, spool, clock, policy=policy or ReplayPolicy(rate_per_s=5, burst=5)
    )
    agent.start()
    return Rig(agent, transport, clock, runtime, spool)


def _ramp(t: float) -> float:
    return (t - 1_764_000_000.0) / 100.0


def test_start_subscribes_to_the_command_topic(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    assert rig.transport.started
    assert rig.transport.subscribed == [f"{BASE}/cmd"]


def test_live_readings_are_sent_at_once_and_deleted_on_puback(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(3)
    sent = rig.telemetry()
    assert [t.seq for t in sent] == [0, 1, 2]
    assert not any(t.historical for t in sent)
    assert len(rig.spool) == 3
    rig.transport.ack_all()
    rig.run(1)
    assert len(rig.spool) == 1  # only the reading made in this last step awaits its PUBACK


def test_birth_is_retained_and_carries_config_version(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(1)
    _, topic, payload, retain = rig.transport.published[0]
    birth = decode(payload, Status)
    assert (topic, retain, birth.state, birth.firmware) == (
        f"{BASE}/status",
        True,
        "online",
        "fw-1",
    )
    assert birth.boot_id == rig.runtime.boot_id


def test_offline_readings_replay_in_order_marked_historical_and_rate_limited(
    tmp_path: Path,
) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.run(20)  # offline: 20 readings spooled
    assert rig.transport.published == []
    rig.transport.connect()
    rig.agent.step(rig.transport.events(0))
    first_turn = [t for t in rig.telemetry() if t.historical]
    assert len(first_turn) == 5  # the bucket's burst, not the whole backlog at once
    rig.run(10)
    sent = rig.telemetry()
    historical = [t.seq for t in sent if t.historical]
    assert historical == list(range(20))
    assert all(not t.historical for t in sent if t.seq >= 20)


def test_unacked_rows_are_not_sent_twice_after_a_reconnect(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(2)
    rig.transport.disconnect()
    rig.run(2)
    rig.transport.connect()
    rig.run(3)
    seqs = [t.seq for t in rig.telemetry()]
    # seq 0 and 1 were handed to the transport already (paho resends them itself).
    assert sorted(seqs) == sorted(set(seqs))
    assert set(range(7)) <= set(seqs)


def test_a_refused_publish_is_counted_and_reported_once_back_online(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(2)
    rig.transport.ack_all(ok=False)
    rig.run(1)
    rig.transport.disconnect()
    rig.transport.connect()
    rig.run(1)
    reports = [e for e in rig.events() if e.type == "spool_dropped"]
    assert len(reports) == 1
    assert reports[0].data == {"refused_dropped": 2}


def test_full_spool_drop_report(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp, limits=SpoolLimits(max_rows=10))
    rig.run(25)
    rig.transport.connect()
    for _ in range(10):
        rig.run(1)
        rig.transport.ack_all()
    report = next(e for e in rig.events() if e.type == "spool_dropped")
    assert report.data == {"routine_dropped": 15}
    replayed = [t.seq for t in rig.telemetry() if t.historical]
    # The oldest readings went first; the report and live readings may push out a few more
    # while the spool is still full, and those are counted for the next report.
    assert replayed == list(range(25 - len(replayed), 25))
    later = rig.spool.drop_counts().get(DEVICE, {}).get("routine", 0)
    assert 15 + later + len(replayed) == 25


def test_a_full_spool_does_not_count_a_message_in_flight_as_dropped(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp, limits=SpoolLimits(max_rows=3))
    rig.transport.connect()
    rig.run(6)  # six live readings in flight, none acknowledged yet: none may be evicted
    assert len(rig.spool) == 6
    assert rig.spool.drop_counts() == {}
    rig.transport.ack_all()
    rig.run(1)
    assert rig.spool.drop_counts() == {}
    assert [t.seq for t in rig.telemetry()] == list(range(7))


def test_drops_of_a_device_no_longer_hosted_name_that_device(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.spool.record_refused("dr-jj-000999", 4)
    rig.transport.connect()
    rig.run(1)
    (report,) = [e for e in rig.events() if e.type == "spool_dropped"]
    assert report.device_id == DEVICE
    assert report.data == {"refused_dropped": 4, "for_device_id": "dr-jj-000999"}


def test_driver_fault_is_an_event_not_a_crash(tmp_path: Path) -> None:
    broken = {3.0, 4.0, 5.0}
    rig = _rig(tmp_path, lambda t: None if (t - 1_764_000_000.0) in broken else 1.0)
    rig.transport.connect()
    rig.run(8)
    assert [e.type for e in rig.events()] == ["device_fault", "device_recovered"]
    assert rig.events()[0].metric == "level_m"


def test_non_finite_values_are_flagged_and_foreign_metrics_ignored(tmp_path: Path) -> None:
    extra = {"flow_m3s": float("nan"), "nh3_mgm3": 1.0}  # nh3 is a toilet metric, not a drain's
    rig = _rig(tmp_path, _ramp, extra=extra)
    rig.transport.connect()
    rig.run(1)
    (sent,) = rig.telemetry()
    assert set(sent.readings) == {"level_m"}
    assert sent.quality == {"flow_m3s": "sensor_fault"}


def test_threshold_crossing_is_published_at_once(tmp_path: Path) -> None:
    config = AgentConfig(
        interval_s=1,
        max_silence_s=100,
        median_window=1,
        deadbands={"level_m": 10.0},
        thresholds={"level_m": Threshold(high=2.0)},
    )
    rig = _rig(tmp_path, lambda t: 3.0 if t - 1_764_000_000.0 >= 5 else 1.0, config)
    rig.transport.connect()
    rig.run(6)
    (event,) = rig.events()
    assert (event.type, event.severity, event.value) == ("threshold_high", "critical", 3.0)
    assert event.ts == 1_764_000_005_000
    assert [t.ts for t in rig.telemetry()] == [1_764_000_000_000, 1_764_000_005_000]


def test_report_by_exception_flat_sends_heartbeats_step_sends_at_once(tmp_path: Path) -> None:
    config = AgentConfig(
        interval_s=1, max_silence_s=10, median_window=3, deadbands={"level_m": 0.05}
    )
    rig = _rig(tmp_path, lambda t: 1.5 if t - 1_764_000_000.0 >= 25 else 1.0, config)
    rig.transport.connect()
    rig.run(30)
    sent = {(t.ts - 1_764_000_000_000) // 1000: t for t in rig.telemetry()}
    # Heartbeats at 0, 10 and 20; the step's first sample at 25 is held back by the 3-sample
    # median and passes it at 26. A step is not a spike: nothing is flagged.
    assert list(sent) == [0, 10, 20, 26]
    assert (sent[26].readings, sent[26].quality) == ({"level_m": 1.5}, None)


def test_a_spike_is_replaced_by_the_median_and_flagged_on_the_wire(tmp_path: Path) -> None:
    config = AgentConfig(
        interval_s=1, max_silence_s=100, median_window=3, deadbands={"level_m": 0.05}
    )
    rig = _rig(tmp_path, lambda t: 7.0 if t - 1_764_000_000.0 == 5 else 1.0, config)
    rig.transport.connect()
    rig.run(10)
    sent = {(t.ts - 1_764_000_000_000) // 1000: t for t in rig.telemetry()}
    # The spike at 5 is confirmed when the level is back, at 6: reported at once, flagged.
    assert list(sent) == [0, 6]
    assert sent[6].readings == {"level_m": 1.0}, "the spike itself never goes out"
    assert sent[6].quality == {"level_m": "spike_filtered"}


def _cmd(cmd_id: str, op: str = "set_config", **config: object) -> bytes:
    return encode(
        Command(
            v=CONTRACT_VERSION,
            cmd_id=cmd_id,
            ts=1,
            op=op,  # type: ignore[arg-type]
            config=dict(config),
        )
    )


def test_bad_config_changes_nothing_good_one_applies_and_persists(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.transport.command(f"{BASE}/cmd", _cmd("c1", interval_s=0))
    rig.transport.command(f"{BASE}/cmd", _cmd("c2", interval_s=5, max_silence_s=50))
    rig.transport.command(f"{BASE}/cmd", _cmd("c2", interval_s=5, max_silence_s=50))
    rig.transport.command(f"{BASE}/cmd", b"{nonsense")
    rig.transport.command(f"{BASE}/cmd", b'{"cmd_id": "c3", "op": "format_disk"}')
    rig.run(1)
    acks = [(a.cmd_id, a.ok, a.config_version) for a in rig.acks()]
    assert acks == [("c1", False, 0), ("c2", True, 1), ("c2", True, 1), ("c3", False, 1)]
    assert "interval_s" in rig.acks()[0].reason
    assert [e.type for e in rig.events()] == ["command_rejected"]
    stored = ConfigStore(tmp_path / "config.json", DeviceKind.DRAIN, ONE_HZ).load()
    assert (stored.version, stored.config.interval_s) == (1, 5.0)


def test_restart_command_starts_a_new_boot(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(3)
    old_boot = rig.runtime.boot_id
    rig.transport.command(f"{BASE}/cmd", _cmd("r1", op="restart"))
    rig.run(1)
    assert rig.runtime.boot_id != old_boot
    births = [decode(p, Status) for p in rig.transport.on_channel("status")]
    assert [b.boot_id for b in births] == [old_boot, rig.runtime.boot_id]
    assert rig.telemetry()[-1].seq == 0


def test_shutdown_publishes_offline_and_stops(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    rig.run(1)
    rig.transport.ack_all()
    rig.agent.shutdown(timeout_s=0.0)
    last = decode(rig.transport.on_channel("status")[-1], Status)
    assert (last.state, last.reason) == ("offline", "shutdown")
    assert rig.transport.stopped


def test_spool_survives_a_new_agent_and_is_replayed(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.run(4)
    rig.spool.close()
    again = _rig(tmp_path, _ramp)
    again.transport.connect()
    again.run(3)
    replayed = [t for t in again.telemetry() if t.historical]
    assert [t.seq for t in replayed] == [0, 1, 2, 3]
    assert {t.boot_id for t in replayed} == {rig.runtime.boot_id}


def test_historical_marking_keeps_everything_else(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.run(1)
    rig.transport.connect()
    rig.run(1)
    replayed = next(p for p in rig.transport.on_channel("telemetry") if b'"seq":0' in p)
    original = rig.spool.between(0, 1, 1)[0].payload
    assert msgspec.json.decode(replayed) == {**msgspec.json.decode(original), "historical": True}


def test_an_agent_needs_a_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one device"):
        EdgeAgent([], FakeTransport(), Spool(tmp_path / "s.db"), ManualClock())


def test_telemetry_without_flags_has_no_quality_key_on_the_wire(tmp_path: Path) -> None:
    config = AgentConfig(interval_s=1, max_silence_s=100, median_window=3)
    rig = _rig(tmp_path, lambda t: 7.0 if t - 1_764_000_000.0 == 8 else 1.0, config)
    rig.transport.connect()
    rig.run(12)
    wire = rig.transport.on_channel("telemetry")
    plain, flagged = wire[0], [p for p in wire if b"spike_filtered" in p]
    assert b'"quality"' not in plain
    assert b"null" not in plain
    assert plain.startswith(b'{"v":1,')
    assert b'"historical"' not in plain
    assert len(flagged) == 1
    assert b'"quality":{"level_m":"spike_filtered"}' in flagged[0]


@dataclass
class _SlowBroker(FakeTransport):
    """Each poll takes its timeout in wall time (the clock, ``speed`` times faster, moves on);
    the broker acknowledges everything after ``ack_after_polls`` polls."""

    clock: ManualClock | None = None
    speed: float = 1.0
    ack_after_polls: int = 0
    polls: int = 0

    def events(self, timeout_s: float) -> list[TransportEvent]:
        assert self.clock is not None
        self.clock.advance(timeout_s * self.speed)
        self.polls += 1
        if self.polls == self.ack_after_polls:
            self.ack_all()
        return super().events(timeout_s)


def test_shutdown_on_a_sped_up_clock_waits_wall_seconds_for_the_offline_acks(
    tmp_path: Path,
) -> None:
    # Regression: the wait was counted on the agent's clock, so at speed 1800 its 5 s were over
    # after the first 0.1 s poll and the disconnect dropped offline statuses still in flight.
    clock = ManualClock(start_s=1_764_000_000.0)
    topic = Topic("jiaojiang", DeviceKind.DRAIN, DEVICE, Channel.TELEMETRY)
    store = ConfigStore(tmp_path / "config.json", DeviceKind.DRAIN, ONE_HZ)
    runtime = DeviceRuntime(topic, ScriptedDriver(DEVICE, _ramp), store, clock, "fw-1")
    broker = _SlowBroker(clock=clock, speed=1800.0)
    agent = EdgeAgent([runtime], broker, Spool(tmp_path / "spool.db"), clock, speed=1800.0)
    agent.start()
    broker.connect()
    agent.step(broker.events(0))
    broker.ack_after_polls = broker.polls + 10  # the broker answers after 1 s of wall time
    agent.shutdown(timeout_s=5.0)
    # It waited for the answer (the bug gave up after one poll), and not a poll longer.
    assert broker.polls == broker.ack_after_polls
    assert broker.stopped
