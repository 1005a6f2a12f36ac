"""The alerting service's plumbing, driven step by step: no network, no sleeps, no wall clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import msgspec
import pytest
from structlog.testing import capture_logs

from alerting import ForecastCounts
from alerting._checkpoint import AckLedger
from alerting._consumer import RECONNECTED, Backoff
from alerting._consumer_route import Router
from alerting._hygiene import Silence
from alerting._service import AlertingService
from alerting._state import StateDelta
from alerting.errors import StoreError
from telemetry_core.clock import ManualClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from telemetry_core.schema import AlertTransition, Telemetry, decode, encode
from tests.unit.alerting.service_fakes import (
    NOW_MS,
    FakeMessage,
    FakeSource,
    MemoryStore,
    ThresholdEngine,
)

TOPIC = "xh/v1/jiaojiang/drain/dr-jj-000001/telemetry"
OTHER = "xh/v1/huangyan/drain/dr-hy-000001/telemetry"


def _registry() -> Registry:
    return Registry(
        [
            Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {}),
            Device("dr-hy-000001", DeviceKind.DRAIN, "huangyan", 28.6, 121.3, 60.0, {}),
        ]
    )


def reading(level_m: float, ts_ms: int, seq: int = 0, device: str = "dr-jj-000001") -> bytes:
    return encode(
        Telemetry(v=1, device_id=device, ts=ts_ms, seq=seq, boot_id="b1",
                  readings={"level_m": level_m})
    )  # fmt: skip


class Rig:
    """A service on fakes, with a manual clock."""

    def __init__(
        self,
        engine: ThresholdEngine | None = None,
        store: MemoryStore | None = None,
        on_thread_death: Callable[[str, BaseException], None] | None = None,
        silences: Callable[[], Sequence[Silence]] | None = None,
    ):
        self.clock = ManualClock(NOW_MS / 1000)
        self.source = FakeSource()
        self.source.subscribed.set()  # connected, as after start()
        self.store = store or MemoryStore()
        self.engine = engine or ThresholdEngine()
        router = Router(self.engine, _registry(), ("jiaojiang",), max_payload_bytes=16_384,
                        max_future_s=300.0)  # fmt: skip
        self.service = AlertingService(
            source=self.source, router=router, store=self.store, clock=self.clock,
            instance="t1", checkpoint_interval_s=0.3, tick_interval_s=1.0, stats_interval_s=10.0,
            deadletter_topic="xh/v1/_deadletter/alerting", max_unconfirmed=100,
            store_backoff=Backoff(0.001, 0.002), on_thread_death=on_thread_death,
            silences=silences,
        )  # fmt: skip
        self.mid = 0

    def send(self, topic: str, payload: bytes) -> int:
        self.mid += 1
        self.source.inbox.append(FakeMessage(topic, payload, self.mid))
        return self.mid

    def checkpoint(self) -> None:
        """Let the checkpoint interval pass, seal, and let the checkpoint thread's work run."""
        self.clock.advance(0.5)
        self.service.step()
        self.service.checkpointer.drain_once()

    def transitions(self) -> list[AlertTransition]:
        return [decode(p, AlertTransition) for t, p in self.source.published
                if t.startswith("xh/v1/_alert/")]  # fmt: skip

    def dead_letters(self) -> list[dict[str, object]]:
        return [msgspec.json.decode(p) for t, p in self.source.published
                if t == "xh/v1/_deadletter/alerting"]  # fmt: skip


def test_a_crossing_is_published_at_once_and_acked_only_after_the_checkpoint() -> None:
    rig = Rig()
    mid = rig.send(TOPIC, reading(2.5, NOW_MS - 1000))
    rig.service.step()
    [transition] = rig.transitions()
    assert (transition.tier_from, transition.tier_to) == ("none", "red")
    assert rig.source.published[0][0] == "xh/v1/_alert/jiaojiang/dr-jj-000001"
    assert rig.source.acks == []  # published, but state not durable yet
    rig.checkpoint()
    assert rig.source.acked_mids() == [mid]
    assert rig.store.transitions == [transition]
    assert ThresholdEngine.restore(rig.store.load()).state["dr-jj-000001"][0] == "red"


def test_the_ack_waits_for_the_puback() -> None:
    rig = Rig()
    rig.source.auto_confirm = False
    rig.send(TOPIC, reading(2.5, NOW_MS - 1000))
    rig.clock.advance(0.5)
    rig.service.step()
    sealed = rig.service.checkpointer._slot
    assert sealed is not None
    assert not rig.source.ledger.confirmed_below(sealed.publish_watermark)
    rig.source.confirm_all()
    assert rig.source.ledger.confirmed_below(sealed.publish_watermark)
    rig.service.checkpointer.drain_once()
    assert rig.source.acked_mids() == [1]


def test_a_bad_message_is_dead_lettered_with_its_reason_and_acked() -> None:
    rig = Rig()
    bad = rig.send(TOPIC, b"{not json")
    spoof = rig.send(TOPIC, reading(2.5, NOW_MS, device="dr-hy-000001"))
    foreign = rig.send(OTHER, reading(2.5, NOW_MS, device="dr-hy-000001"))
    unknown = rig.send("xh/v1/jiaojiang/drain/dr-jj-999999/telemetry", reading(1, NOW_MS))
    future = rig.send(TOPIC, reading(0.5, NOW_MS + 3_600_000))
    good = rig.send(TOPIC, reading(2.5, NOW_MS))
    rig.checkpoint()
    reasons = [d["reason"] for d in rig.dead_letters()]
    assert reasons == ["malformed_json", "topic_mismatch", "bad_topic", "unknown_device",
                       "ts_future"]  # fmt: skip
    assert "partition" in str(rig.dead_letters()[2]["detail"])
    assert rig.source.acked_mids() == [bad, spoof, foreign, unknown, future, good]
    assert len(rig.transitions()) == 1


def test_an_engine_exception_sets_only_that_message_aside() -> None:
    engine = ThresholdEngine()
    engine.explode_on = "dr-jj-000001"
    rig = Rig(engine)
    first = rig.send(TOPIC, reading(2.5, NOW_MS))
    rig.service.step()
    engine.explode_on = None
    second = rig.send(TOPIC, reading(2.5, NOW_MS + 1000))
    rig.checkpoint()
    [letter] = rig.dead_letters()
    assert letter["reason"] == "internal_error"
    assert "ZeroDivisionError" in str(letter["detail"])
    assert rig.source.acked_mids() == [first, second]
    assert rig.service.counters.rejected == 1


def test_a_failing_store_is_retried_and_nothing_is_acked_meanwhile() -> None:
    store = MemoryStore()
    store.fail = 2
    rig = Rig(store=store)
    mid = rig.send(TOPIC, reading(2.5, NOW_MS))
    rig.checkpoint()  # drain_once retries until the store takes it
    assert rig.service.checkpointer.store_errors == 2
    assert rig.source.acked_mids() == [mid]


def test_a_restart_from_the_checkpoint_replays_to_the_same_transition_ids() -> None:
    rig = Rig()
    rig.send(TOPIC, reading(1.5, NOW_MS))
    rig.checkpoint()
    rig.send(TOPIC, reading(2.5, NOW_MS + 1000))
    rig.service.step()  # published, then the process dies before the next checkpoint
    before = rig.transitions()
    assert len(before) == 1

    restored = ThresholdEngine.restore(rig.store.load())
    again = Rig(restored, rig.store)
    again.send(TOPIC, reading(1.5, NOW_MS))  # redelivered: already in the checkpoint
    again.send(TOPIC, reading(2.5, NOW_MS + 1000))  # redelivered: replayed
    again.checkpoint()
    assert [t.transition_id for t in again.transitions()] == [before[0].transition_id]


def test_acks_carry_the_connection_they_came_on() -> None:
    rig = Rig()
    rig.source.inbox.append(RECONNECTED)
    first = rig.send(TOPIC, reading(0.5, NOW_MS))
    rig.source.inbox.append(RECONNECTED)
    second = rig.send(TOPIC, reading(0.6, NOW_MS + 1))
    rig.checkpoint()
    assert rig.source.acks == [(1, [first]), (2, [second])]


def test_ticks_run_on_wall_time_when_idle_and_stats_are_published() -> None:
    rig = Rig()
    rig.clock.advance(10.5)  # nothing heard for longer than catchup_quiet_s (10 s by default)
    rig.service.step()
    assert rig.engine.ticks == [rig.clock.now_s()]
    [(topic, payload)] = [p for p in rig.source.published if p[0].endswith("/stats")]
    assert topic == "xh/v1/_alerting/t1/stats"
    assert msgspec.json.decode(payload)["instance"] == "t1"


@pytest.mark.parametrize("count", [1, 50])
def test_every_message_is_acked_exactly_once(count: int) -> None:
    rig = Rig()
    mids = [rig.send(TOPIC, reading(i % 3, NOW_MS + i, seq=i)) for i in range(count)]
    rig.checkpoint()
    rig.checkpoint()
    assert rig.source.acked_mids() == mids


def test_flapping_windows_slide_on_event_time_not_on_wall_ticks() -> None:
    rig = Rig()
    base = NOW_MS - 3_600_000  # an hour ago
    offsets = [0, 20_000, 59_999, 60_000, 185_000]
    for k, offset_ms in enumerate(offsets):
        rig.send(TOPIC, reading(0.5, base + offset_ms, seq=k))
    rig.clock.advance(5.0)  # ticks happen too: they must not slide the windows
    rig.service.step()
    assert rig.engine.slides == [(base + offset_ms, False) for offset_ms in offsets]
    assert rig.engine.ticks == [(base + 185_000) / 1000]  # catching up: at the time read so far


class BrokenSnapshot(ThresholdEngine):
    def delta(self) -> StateDelta:
        raise MemoryError("no room for the snapshot")


def test_a_worker_thread_that_dies_is_reported_by_name_and_stops_the_service() -> None:
    died: list[tuple[str, str]] = []
    dead = threading.Event()

    def on_death(name: str, exc: BaseException) -> None:
        died.append((name, type(exc).__name__))
        dead.set()

    rig = Rig(BrokenSnapshot(), on_thread_death=on_death)
    rig.send(TOPIC, reading(2.5, NOW_MS))
    rig.clock.advance(1.0)  # the checkpoint is due at once: the processor takes a snapshot
    rig.service.start()
    try:
        assert dead.wait(30), "the processor's death was not reported"
    finally:
        rig.service.stop(timeout_s=5)
    assert died == [("alerting-processor", "MemoryError")]
    assert rig.service.dead_thread() == "alerting-processor"
    assert rig.source.acks == []  # nothing durable, nothing acknowledged


def test_silences_are_read_again_and_a_failed_read_keeps_those_in_force() -> None:
    stored = [Silence(ends_s=NOW_MS / 1000 + 3600, district="jiaojiang")]
    fail = [False]

    def read() -> list[Silence]:
        if fail[0]:
            raise ConnectionError("store down")
        return list(stored)

    rig = Rig(silences=read)
    assert rig.engine.silences == []
    assert rig.service.refresh_silences_once()
    assert rig.engine.silences == []  # taken by the processor, not by the reading thread
    rig.service.step()
    assert rig.engine.silences == stored
    assert tuple(rig.service.silences) == tuple(stored)
    fail[0] = True
    assert not rig.service.refresh_silences_once()
    rig.service.step()
    assert rig.engine.silences == stored
    fail[0] = False
    stored.clear()
    assert rig.service.refresh_silences_once()
    rig.service.step()
    assert rig.engine.silences == []


def test_a_transition_the_store_refuses_for_good_is_dead_lettered_and_the_stream_goes_on() -> None:
    rig = Rig()
    first = rig.send(TOPIC, reading(2.5, NOW_MS - 2000))
    rig.service.step()
    [refused] = rig.transitions()
    rig.store.refuse.add(refused.transition_id)
    rig.checkpoint()  # written without it
    rig.service.step()  # the processor dead-letters what the checkpoint thread set aside
    [letter] = rig.dead_letters()
    assert letter["reason"] == "store_refused"
    assert letter["topic"] == "xh/v1/_alert/jiaojiang/dr-jj-000001"
    assert "memory://test" in str(letter["detail"])
    assert refused.transition_id in str(letter["payload"])
    second = rig.send(TOPIC, reading(0.5, NOW_MS - 1000))
    rig.checkpoint()
    assert rig.source.acked_mids() == [first, second]
    assert [t.tier_to for t in rig.store.transitions] == ["none"]


def test_a_permanent_store_error_ends_the_checkpoint_thread_naming_the_store() -> None:
    died: list[tuple[str, BaseException]] = []
    dead = threading.Event()

    def on_death(name: str, exc: BaseException) -> None:
        died.append((name, exc))
        dead.set()

    store = MemoryStore()
    store.broken = True
    rig = Rig(store=store, on_thread_death=on_death)
    rig.send(TOPIC, reading(2.5, NOW_MS))
    rig.clock.advance(1.0)
    with capture_logs() as logs:
        rig.service.start()
        try:
            assert dead.wait(30), "the checkpoint thread's death was not reported"
        finally:
            rig.service.stop(timeout_s=5)
    [(name, exc)] = died
    assert name == "alerting-checkpoint"
    assert isinstance(exc, StoreError)
    assert not exc.retryable
    [fatal] = [e for e in logs if e["event"] == "checkpoint_store_fatal"]
    assert fatal["store"] == "memory://test"
    assert "cannot be written" in fatal["error"]
    assert rig.source.acks == []
    assert rig.service.checkpointer.store_errors == 1  # not retried


def test_a_seal_taken_back_goes_out_merged_into_the_next() -> None:
    ledger = AckLedger()
    ledger.note_message(0, 1, 1)
    first = ledger.seal(StateDelta({"m": b"1", "d:a": b"a1"}, full=True), 3, 0.0)
    ledger.restore(first)  # the checkpoint thread was still busy
    ledger.note_message(0, 2, 1)
    second = ledger.seal(StateDelta({"m": b"2", "d:b": b"b2"}), 5, 1.0)
    assert second.delta == StateDelta({"m": b"2", "d:a": b"a1", "d:b": b"b2"}, full=True)
    assert second.acks == ((0, [1, 2]),)


def test_the_forecasts_runs_failures_and_waits_reach_the_prometheus_counters() -> None:
    rig = Rig()
    registry = rig.service._metrics.registry
    rig.engine.forecast = ForecastCounts(3, 1, 0.9, 0.05)
    assert rig.service.maybe_stats(force=True)
    rig.engine.forecast = ForecastCounts(5, 1, 1.5, 0.05)
    assert rig.service.maybe_stats(force=True)
    assert registry.get_sample_value("xiuhua_alerting_forecast_runs_total") == 5
    assert registry.get_sample_value("xiuhua_alerting_forecast_failures_total") == 1
    assert registry.get_sample_value("xiuhua_alerting_forecast_seconds_total") == pytest.approx(1.5)
    assert registry.get_sample_value("xiuhua_alerting_forecast_wait_seconds_total") == (
        pytest.approx(0.05)
    )


def test_late_readings_reach_their_prometheus_counter() -> None:
    rig = Rig()
    registry = rig.service._metrics.registry
    rig.engine.late_readings = 4
    assert rig.service.maybe_stats(force=True)
    rig.engine.late_readings = 9
    assert rig.service.maybe_stats(force=True)
    assert registry.get_sample_value("xiuhua_alerting_late_readings_total") == 9


def test_each_round_encodes_changed_devices_ahead_of_the_seal() -> None:
    rig = Rig()
    for k in range(3):
        rig.send(TOPIC, reading(0.5, NOW_MS - 1000 + k))
    rig.service.step()
    assert rig.engine.encoded_ahead == [(64, 256)]  # at least 64; 256 left for the seal
