"""Poison messages: whatever a message does to the code, it is dead-lettered and acknowledged,
the stream goes on, and the worker threads live; a thread that dies anyway ends the process."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import msgspec
import pytest

from cloud_ingest import Pipeline, SeqTracker
from cloud_ingest._accounting import COUNTER_MAX
from cloud_ingest._pipeline import Accepted
from cloud_ingest._service import IngestService
from cloud_ingest._writer import Backoff, BatchWriter
from telemetry_core.clock import ManualClock
from telemetry_core.errors import RejectReason
from telemetry_core.schema import SAFE_INT_MAX
from tests.unit.cloud_ingest.conftest import NOW_MS, FakeMessage, FakeSink, FakeSource

TOPIC = "xh/v1/jiaojiang/drain/drain-001/telemetry"
EVENT = "xh/v1/jiaojiang/drain/drain-001/event"
STATUS = "xh/v1/jiaojiang/drain/drain-001/status"


def good(seq: int) -> bytes:
    return msgspec.json.encode(
        {"v": 1, "device_id": "drain-001", "ts": NOW_MS - seq, "seq": seq, "boot_id": "b",
         "readings": {"level_m": 1.0}}
    )  # fmt: skip


def with_fields(base: bytes, **fields: object) -> bytes:
    body = json.loads(base)
    body.update(fields)
    return json.dumps(body).encode()


EV = msgspec.json.encode({"v": 1, "device_id": "drain-001", "ts": NOW_MS, "seq": 1,
                          "boot_id": "b", "type": "threshold_crossed"})  # fmt: skip
ST = msgspec.json.encode({"v": 1, "device_id": "drain-001", "ts": NOW_MS, "boot_id": "b",
                          "state": "online"})  # fmt: skip
DEEP = b'{"v":1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}"

# The families the hostile stream found, each as the reason it must now be refused with.
POISON = [
    (TOPIC, DEEP, "malformed_json"),
    (EVENT, DEEP, "malformed_json"),
    (STATUS, DEEP, "malformed_json"),
    (TOPIC, with_fields(good(1), seq=2**63 - 1), "schema"),
    (TOPIC, with_fields(good(1), seq=2**64), "schema"),
    (TOPIC, with_fields(good(1), boot_id="b\n"), "schema"),
    (EVENT, with_fields(EV, seq=2**63 - 1), "schema"),
    (EVENT, with_fields(EV, data={"n": 2**64}), "schema"),
    (EVENT, with_fields(EV, data={"n": -(2**63) - 5}), "schema"),
    (STATUS, with_fields(ST, config_version=2**63), "schema"),
    (STATUS, with_fields(ST, config_version=10**20), "schema"),
    (TOPIC, with_fields(good(1), v=10**30), "schema"),
    (TOPIC, with_fields(good(1), ts=2**63), "schema"),
    (EVENT, with_fields(EV, ts=253_402_300_799_999), "schema"),  # year 9999: ns beyond int64
    (TOPIC, good(1).replace(b'"level_m":1.0', b'"level_m":1e400'), "non_finite"),
    (EVENT, with_fields(EV, value=1).replace(b'"value": 1', b'"value": -1e999'), "non_finite"),
]


def make(pipeline: Pipeline, sink: FakeSink | None = None) -> tuple[IngestService, FakeSource]:
    source = FakeSource()
    writer = BatchWriter(sink or FakeSink(), Backoff(0.01, 0.1), lambda _s: True)
    service = IngestService(
        source=source, pipeline=pipeline, writer=writer, clock=ManualClock(NOW_MS / 1000),
        instance="t1", batch_size=4, batch_interval_s=0.1, pending_batches=100,
        stats_interval_s=60, deadletter_topic="dl",
    )  # fmt: skip
    return service, source


def run(service: IngestService) -> None:
    service.process_pending()
    while not service._batches.empty():
        service.write_batch(service._batches.get_nowait())


def reasons(source: FakeSource) -> list[str]:
    return [json.loads(body)["reason"] for _, body in source.published]


@pytest.mark.parametrize(("topic", "payload", "reason"), POISON)
def test_reported_poison_is_refused_with_its_reason_and_acked(
    pipeline: Pipeline, topic: str, payload: bytes, reason: str
) -> None:
    sink = FakeSink()
    service, source = make(pipeline, sink)
    source.inbox.extend(
        [
            FakeMessage(TOPIC, good(0), 1),
            FakeMessage(topic, payload, 2),
            FakeMessage(TOPIC, good(2), 3),
        ]
    )
    run(service)
    assert reasons(source) == [reason]
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2, 3]
    assert sum(line.startswith("drain,") for line in sink.lines) == 2


class ExplodingPipeline(Pipeline):
    """A pipeline with a bug that only some payloads reach."""

    def __init__(self, inner: Pipeline, error: Callable[[], Exception]) -> None:
        self.__dict__.update(inner.__dict__)
        self._error = error

    def process(self, topic: str, payload: bytes, now_ms: int) -> Accepted:
        if b"boom" in payload:
            raise self._error()
        return super().process(topic, payload, now_ms)


@pytest.mark.parametrize(
    "error",
    [
        lambda: OverflowError("int too large to convert to float"),
        lambda: RecursionError("maximum recursion depth exceeded"),
        lambda: KeyError("nobody foresaw this"),
        lambda: ZeroDivisionError("division by zero"),
    ],
)
def test_an_unforeseen_exception_becomes_an_internal_error_dead_letter(
    pipeline: Pipeline, error: Callable[[], Exception]
) -> None:
    sink = FakeSink()
    service, source = make(ExplodingPipeline(pipeline, error), sink)
    bad = with_fields(good(1), boot_id="boom")
    source.inbox.extend(FakeMessage(TOPIC, bad if i == 1 else good(i), i + 1) for i in range(6))
    run(service)
    assert reasons(source) == ["internal_error"]
    record = json.loads(source.published[0][1])
    assert record["detail"].startswith(type(error()).__name__ + ":")
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2, 3, 4, 5, 6]
    assert sum(line.startswith("drain,") for line in sink.lines) == 5
    assert sum("reason=internal_error" in line for line in sink.lines) == 1
    assert service.counters.rejected == 1


def test_a_worker_thread_that_dies_is_reported_by_name(pipeline: Pipeline) -> None:
    class BrokenSink(FakeSink):
        def write(self, body: bytes) -> None:
            raise RuntimeError(f"a bug in the sink ({len(body)} bytes)")

    died: list[tuple[str, str]] = []
    done = threading.Event()

    def on_death(name: str, exc: BaseException) -> None:
        died.append((name, type(exc).__name__))
        done.set()

    source = FakeSource()
    service = IngestService(
        source=source, pipeline=pipeline,
        writer=BatchWriter(BrokenSink(), Backoff(0.01, 0.1), lambda _s: True),
        clock=ManualClock(NOW_MS / 1000), instance="t1", batch_size=4, batch_interval_s=0.01,
        pending_batches=10, stats_interval_s=60, deadletter_topic="dl", on_thread_death=on_death,
    )  # fmt: skip
    service.start()
    try:
        source.inbox.append(FakeMessage(TOPIC, good(0), 1))
        source.wake.set()
        assert done.wait(30)
    finally:
        service.stop(timeout_s=5)
    assert died == [("ingest-writer", "RuntimeError")]
    assert source.acks == []


def test_a_late_number_from_before_the_first_seen_never_makes_gaps_negative() -> None:
    # The ingester started mid-boot: seq 5 is the first it sees, then 3 arrives late.
    tracker = SeqTracker()
    for seq in (5, 3, 4, 6):
        tracker.observe("d", "b", seq)
    c = tracker.counters("d")
    assert (c.gaps, c.out_of_order, c.duplicates) == (0, 2, 0)


def test_gap_counts_saturate_at_int64() -> None:
    tracker = SeqTracker()
    for boot in range(2_000):
        tracker.observe("d", f"b{boot}", 0)
        tracker.observe("d", f"b{boot}", SAFE_INT_MAX)
    assert tracker.counters("d").gaps == COUNTER_MAX


def test_an_own_point_the_database_refuses_is_counted_and_logged(pipeline: Pipeline) -> None:
    sink = FakeSink()
    sink.refuse = ["ingest_device_stats"]
    service, source = make(pipeline, sink)
    source.inbox.extend(FakeMessage(TOPIC, good(i), mid=i + 1) for i in range(3))
    run(service)
    assert service.maybe_emit_stats(force=True)
    run(service)
    assert service.counters.dropped == 1
    assert any(line.startswith("ingest_stats,") for line in sink.lines)
    assert service.counters.written == 3
    assert reasons(source) == []
    assert RejectReason.INTERNAL_ERROR.value == "internal_error"


class BadTagsPipeline(Pipeline):
    """A pipeline whose reject tags cannot be written (a bug that would break the dead letter)."""

    def __init__(self, inner: Pipeline) -> None:
        self.__dict__.update(inner.__dict__)

    def topic_tags(self, topic: str) -> tuple[str | None, str | None, str | None]:  # noqa: ARG002
        return "two\nlines", None, None


def test_a_dead_letter_that_would_not_encode_is_kept_in_a_safe_form(pipeline: Pipeline) -> None:
    sink = FakeSink()
    service, source = make(BadTagsPipeline(pipeline), sink)
    source.inbox.extend([FakeMessage(TOPIC, b"{oops \xff", 1), FakeMessage(TOPIC, good(2), 2)])
    run(service)
    (record,) = [json.loads(body) for _, body in source.published]
    assert record["reason"] == "internal_error"
    assert record["detail"].startswith("dead letter unwritable (LineProtocolError)")
    assert record["payload"] == "b'{oops \\xff'"
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2]
    assert sum(line.startswith("drain,") for line in sink.lines) == 1
