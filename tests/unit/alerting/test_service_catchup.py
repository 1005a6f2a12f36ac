"""Silent devices after an outage: the service judges silence only once it has caught up.

The real engine and router on a fake broker and a manual clock: a backlog delivered after a
restart raises no silent alert for devices whose readings it holds, while a device that is
truly silent in it is still reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import AlertingService, Engine
from alerting._catchup import EventClock
from alerting._consumer import RECONNECTED, Backoff
from alerting._consumer_route import Router
from telemetry_core.clock import ManualClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from telemetry_core.schema import AlertTransition, Telemetry, decode, encode
from telemetry_core.topics import Topic, parse_topic
from tests.unit.alerting.kit import rules
from tests.unit.alerting.service_fakes import NOW_MS, FakeMessage, FakeSource, MemoryStore

SILENT = """
version: 1
rules:
  - name: device.silent
    kind: "*"
    type: silent
    category: device
    tier: yellow
    after_intervals: 5
    repeat: 0s
"""
MIN_MS = 60_000
TALKING, QUIET = "dr-jj-000001", "dr-jj-000002"


def _topic(device_id: str) -> str:
    return f"xh/v1/jiaojiang/drain/{device_id}/telemetry"


def _reading(device_id: str, ts_ms: int) -> bytes:
    return encode(Telemetry(v=1, device_id=device_id, ts=ts_ms, seq=ts_ms // MIN_MS,
                            boot_id="b1", readings={"fill_ratio": 0.2}))  # fmt: skip


class Restarted:
    """A service that was down for an hour: its engine last read everything up to an hour and
    a minute ago; now it starts, connected, with the broker's queue not yet delivered."""

    def __init__(self, tmp_path: Path, lateness_s: float = 0.0) -> None:
        devices = [Device(d, DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {})
                   for d in (TALKING, QUIET)]  # fmt: skip
        self.engine = Engine(rules(tmp_path, SILENT), devices)
        self.down_ms = NOW_MS - 61 * MIN_MS
        for device in (TALKING, QUIET):
            self.engine.on_telemetry(*_parsed(device, self.down_ms))
        assert self.engine.tick(self.down_ms / 1000) == []
        self.clock = ManualClock(NOW_MS / 1000)
        self.source = FakeSource()
        self.source.subscribed.set()
        router = Router(self.engine, Registry(devices), ("jiaojiang",),
                        max_payload_bytes=16_384, max_future_s=300.0)  # fmt: skip
        self.service = AlertingService(
            source=self.source, router=router, store=MemoryStore(), clock=self.clock,
            instance="t1", checkpoint_interval_s=0.3, tick_interval_s=1.0,
            stats_interval_s=3600.0, deadletter_topic="xh/v1/_deadletter/alerting",
            max_unconfirmed=100, store_backoff=Backoff(0.001, 0.002), catchup_quiet_s=10.0,
            catchup_lateness_s=lateness_s,
        )  # fmt: skip
        self.mid = 0

    def deliver(self, messages: list[tuple[str, bytes]]) -> None:
        self.source.inbox.append(RECONNECTED)
        for topic, payload in messages:
            self.mid += 1
            self.source.inbox.append(FakeMessage(topic, payload, self.mid))

    def run(self, seconds: float, step_s: float = 0.5) -> None:
        """Let ``seconds`` pass in steps, the service working (and checkpointing) at each."""
        for _ in range(round(seconds / step_s)):
            self.clock.advance(step_s)
            self.service.step()
            self.service.checkpointer.drain_once()

    def silent(self) -> list[AlertTransition]:
        out = [decode(p, AlertTransition) for t, p in self.source.published
               if t.startswith("xh/v1/_alert/")]  # fmt: skip
        return [t for t in out if t.rule == "device.silent"]


def _parsed(device_id: str, ts_ms: int) -> tuple[Topic, Telemetry]:
    return parse_topic(_topic(device_id)), decode(_reading(device_id, ts_ms), Telemetry)


def _backlog(talking_until_ms: int, quiet_until_ms: int, start_ms: int) -> list[tuple[str, bytes]]:
    """A reading a minute from each device, in publish order; each stops at its ``until``."""
    out = []
    for ts in range(start_ms, talking_until_ms + 1, MIN_MS):
        out.append((_topic(TALKING), _reading(TALKING, ts)))
        if ts <= quiet_until_ms:
            out.append((_topic(QUIET), _reading(QUIET, ts)))
    return out


def test_a_backlog_after_a_restart_raises_no_silent_alert_but_a_silent_device_still_is(
    tmp_path: Path,
) -> None:
    rig = Restarted(tmp_path)
    rig.run(3.0)  # connected, the queue not delivered yet: wall time is an hour ahead
    assert rig.silent() == []
    # The queue: both devices every minute, QUIET stopping 40 minutes ago.
    rig.deliver(_backlog(NOW_MS, NOW_MS - 40 * MIN_MS, rig.down_ms + MIN_MS))
    rig.run(3.0)
    [silent] = rig.silent()
    assert (silent.device_id, silent.tier_to) == (QUIET, "yellow")
    assert silent.reason == "silent for 40 min"  # against the time read so far (the backlog's)
    for _ in range(5):  # live: TALKING heard every minute, never called silent; QUIET stands
        rig.run(60.0, step_s=1.0)
        rig.deliver([(_topic(TALKING), _reading(TALKING, int(rig.clock.now_s() * 1000)))])
    rig.run(60.0, step_s=1.0)
    assert [t.device_id for t in rig.silent()] == [QUIET]


def test_a_fleet_quiet_since_before_the_restart_is_reported_once_the_service_is_idle(
    tmp_path: Path,
) -> None:
    rig = Restarted(tmp_path)
    rig.deliver(_backlog(NOW_MS - 30 * MIN_MS, NOW_MS - 30 * MIN_MS, rig.down_ms + MIN_MS))
    rig.run(5.0)  # read, checkpointed, acknowledged: still within catchup_quiet_s
    assert rig.silent() == []
    rig.run(10.0)  # idle for catchup_quiet_s: the backlog is over, the fleet has been quiet
    assert sorted(t.device_id for t in rig.silent()) == [TALKING, QUIET]
    assert {t.reason for t in rig.silent()} == {"silent for 30 min"}


@pytest.mark.parametrize(("lateness_s", "silent"), [(0.0, [QUIET]), (600.0, [])])
def test_a_reading_still_in_flight_is_not_silence_within_the_lateness(
    tmp_path: Path, lateness_s: float, silent: list[str]
) -> None:
    # One moment of the fleet, 7 minutes after the last: TALKING's reading of it is read
    # first, QUIET's arrives a moment later (a gateway's round, or an accelerated simulation
    # whose 0.35 s stall is 7 simulated minutes).
    rig = Restarted(tmp_path, lateness_s=lateness_s)
    moment = rig.down_ms + 7 * MIN_MS
    rig.deliver([(_topic(TALKING), _reading(TALKING, moment))])
    rig.run(1.0)
    assert [t.device_id for t in rig.silent() if t.tier_to == "yellow"] == silent
    rig.deliver([(_topic(QUIET), _reading(QUIET, moment))])
    rig.run(1.0)
    assert [t.tier_to for t in rig.silent()] == ["yellow", "none"][: 2 * len(silent)]


def test_the_event_clock() -> None:
    clock = EventClock(quiet_s=10.0, heard_at_s=0.0)
    wall = 1_000_000.0
    assert clock.tick_at(wall, 1.0, subscribed=True, settled=True) is None  # nothing read yet
    assert clock.tick_at(wall, 10.0, subscribed=True, settled=True) == wall  # quiet since start
    assert clock.tick_at(wall, 10.0, subscribed=False, settled=True) is None  # deaf: no judging
    clock.heard(20.0, int((wall - 3600) * 1000))  # a backlog an hour old
    assert clock.tick_at(wall, 22.0, subscribed=True, settled=False) == wall - 3600 + 2
    assert clock.tick_at(wall, 29.0, subscribed=True, settled=True) == wall - 3600 + 9
    assert clock.tick_at(wall, 31.0, subscribed=True, settled=False) == wall - 3600 + 11
    assert clock.tick_at(wall, 31.0, subscribed=True, settled=True) == wall  # idle: over
    clock.heard(40.0, int((wall - 7200) * 1000))  # older than the newest: the newest stands
    assert clock.tick_at(wall, 41.0, subscribed=True, settled=False) == wall - 3600 + 21
    clock.heard(50.0, int(wall * 1000) + 5000)  # a clock ahead of ours: capped at wall time
    assert clock.tick_at(wall, 50.0, subscribed=True, settled=False) == wall
    late = EventClock(quiet_s=10.0, heard_at_s=0.0, lateness_s=120.0)
    late.heard(1.0, int((wall - 3600) * 1000))
    assert late.tick_at(wall, 3.0, subscribed=True, settled=False) == wall - 3600 + 2 - 120
