"""The service, stepped by hand: acks only after the write, dead letters, generations, stats."""

from __future__ import annotations

import json
import random

import msgspec
import pytest
from structlog.testing import capture_logs

import cloud_ingest
from cloud_ingest import (
    DROPPED_TOPIC,
    RECONNECTED,
    Backoff,
    BatchWriter,
    BrokerDropWatch,
    IngestSection,
    IngestService,
    Pipeline,
    SinkError,
    WriterStoppedError,
)
from telemetry_core.clock import ManualClock
from telemetry_core.errors import ConfigError
from tests.unit.cloud_ingest.conftest import NOW_MS, FakeMessage, FakeSink, FakeSource

TOPIC = "xh/v1/jiaojiang/drain/drain-001/telemetry"


def good(seq: int, level: float = 1.0) -> bytes:
    return msgspec.json.encode(
        {"v": 1, "device_id": "drain-001", "ts": NOW_MS - seq, "seq": seq, "boot_id": "b",
         "readings": {"level_m": level}}
    )  # fmt: skip


def make(
    pipeline: Pipeline,
    sink: FakeSink,
    keep_going: bool = True,
    broker_drops: BrokerDropWatch | None = None,
) -> tuple[IngestService, FakeSource]:
    source = FakeSource()
    writer = BatchWriter(sink, Backoff(0.1, 1.0, random.Random(0)), lambda _s: keep_going)
    service = IngestService(
        source=source, pipeline=pipeline, writer=writer, clock=ManualClock(NOW_MS / 1000),
        instance="t1", batch_size=3, batch_interval_s=0.1, pending_batches=10,
        stats_interval_s=60, deadletter_topic="dl", broker_drops=broker_drops,
    )  # fmt: skip
    return service, source


def drain(service: IngestService) -> None:
    queue = service._batches
    while not queue.empty():
        service.write_batch(queue.get_nowait())


def test_messages_are_acked_only_after_the_sink_has_them(pipeline: Pipeline) -> None:
    sink = FakeSink()
    service, source = make(pipeline, sink)
    source.inbox.extend(FakeMessage(TOPIC, good(i), mid=i + 1) for i in range(5))
    assert service.process_pending() == 2
    assert source.acks == []
    drain(service)
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2, 3, 4, 5]
    assert len([line for line in sink.lines if line.startswith("drain,")]) == 5
    assert service.counters.written == 5


def test_no_ack_when_stopped_during_an_outage(pipeline: Pipeline) -> None:
    sink = FakeSink()
    sink.fail = [SinkError("down", retryable=True, status=503)]
    service, source = make(pipeline, sink, keep_going=False)
    source.inbox.append(FakeMessage(TOPIC, good(0), mid=1))
    service.process_pending()
    with pytest.raises(WriterStoppedError):
        drain(service)
    assert source.acks == []


def test_rejects_are_stored_published_and_acked(pipeline: Pipeline) -> None:
    sink = FakeSink()
    service, source = make(pipeline, sink)
    source.inbox.extend([FakeMessage(TOPIC, b"{oops", mid=1), FakeMessage(TOPIC, good(1), mid=2)])
    service.process_pending()
    drain(service)
    rejects = [line for line in sink.lines if line.startswith("ingest_rejects")]
    assert len(rejects) == 1
    assert "reason=malformed_json" in rejects[0]
    assert 'payload="{oops"' in rejects[0]
    topic, body = source.published[0]
    record = json.loads(body)
    assert (topic, record["reason"], record["payload"]) == ("dl", "malformed_json", "{oops")
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2]
    assert service.counters.rejected == 1


def test_point_refused_by_the_database_goes_to_the_dead_letter(pipeline: Pipeline) -> None:
    sink = FakeSink()
    sink.refuse = ["level_m=6.5"]
    service, source = make(pipeline, sink)
    source.inbox.extend(
        FakeMessage(TOPIC, good(i, 6.5 if i == 1 else 1.0), mid=i) for i in range(3)
    )
    service.process_pending()
    drain(service)
    assert [json.loads(p)["reason"] for _, p in source.published] == ["write_rejected"]
    assert sum(line.startswith("drain,") for line in sink.lines) == 2
    assert sum("reason=write_rejected" in line for line in sink.lines) == 1
    assert service.counters.written == 2


def test_acks_carry_the_generation_of_their_connection(pipeline: Pipeline) -> None:
    service, source = make(pipeline, FakeSink())
    source.inbox.extend(
        [FakeMessage(TOPIC, good(0), 1), RECONNECTED, FakeMessage(TOPIC, good(1), 1)]
    )
    service.process_pending()
    drain(service)
    assert [gen for gen, _ in source.acks] == [0, 1]


def test_stats_points_are_written(pipeline: Pipeline) -> None:
    sink = FakeSink()
    service, source = make(pipeline, sink)
    source.inbox.extend(FakeMessage(TOPIC, good(i), mid=i) for i in (0, 1, 1, 5))
    service.process_pending()
    drain(service)
    assert service.maybe_emit_stats(force=True)
    drain(service)
    device = next(line for line in sink.lines if line.startswith("ingest_device_stats"))
    assert "device_id=drain-001" in device
    assert "duplicates=1i" in device
    assert "gaps=3i" in device
    stats = next(line for line in sink.lines if line.startswith("ingest_stats"))
    assert "received=4i" in stats
    assert "e2e_latency_ms_p99=" in stats


def test_broker_drops_go_into_ingest_stats_as_delta_and_total(pipeline: Pipeline) -> None:
    sink = FakeSink()
    drops = BrokerDropWatch()
    service, _ = make(pipeline, sink, broker_drops=drops)
    drops.on_message(DROPPED_TOPIC, b"400")
    service.maybe_emit_stats(force=True)
    drops.on_message(DROPPED_TOPIC, b"430")
    service.maybe_emit_stats(force=True)
    service.maybe_emit_stats(force=True)
    drain(service)
    stats = [line for line in sink.lines if line.startswith("ingest_stats")]
    fields = [line.split(" ")[1] for line in stats]
    assert ["broker_dropped=400i,broker_dropped_total=400i" in f for f in fields] == [
        True, False, False]  # fmt: skip
    assert "broker_dropped=30i,broker_dropped_total=430i" in fields[1]
    assert "broker_dropped=0i,broker_dropped_total=430i" in fields[2]
    assert service.summary()["broker_dropped"] == 430


def test_events_and_statuses_are_written_and_acked_with_telemetry(pipeline: Pipeline) -> None:
    sink = FakeSink()
    service, source = make(pipeline, sink)
    event = msgspec.json.encode(
        {"v": 1, "device_id": "drain-001", "ts": NOW_MS, "seq": 9, "boot_id": "b",
         "type": "spool_dropped", "severity": "warning", "data": {"dropped": 12}}
    )  # fmt: skip
    status = msgspec.json.encode(
        {"v": 1, "device_id": "drain-001", "ts": NOW_MS, "boot_id": "b", "state": "offline"}
    )
    source.inbox.extend([
        FakeMessage(TOPIC, good(1), 1),
        FakeMessage("xh/v1/jiaojiang/drain/drain-001/event", event, 2),
        FakeMessage("xh/v1/jiaojiang/drain/drain-001/status", status, 3),
    ])  # fmt: skip
    service.process_pending()
    drain(service)
    assert [line.split(",")[0] for line in sink.lines] == [
        "drain", "device_events", "device_status"]  # fmt: skip
    assert "data_dropped=12.0" in sink.lines[1]
    assert [mid for _, mids in source.acks for mid in mids] == [1, 2, 3]
    assert service.counters.written == 3


def test_receive_maximum_must_exceed_two_batches() -> None:
    with pytest.raises(ValueError, match="receive_maximum"):
        IngestSection(batch_size=5000, receive_maximum=6000)


def test_v2_without_bucket_is_a_config_error() -> None:
    from cloud_ingest import build_sink
    from telemetry_core.settings import InfluxSettings

    with pytest.raises(ConfigError):
        build_sink(InfluxSettings(api="v2", org="o"))


def test_public_surface_is_what_we_meant() -> None:
    assert set(cloud_ingest.__all__) == {
        name for name in dir(cloud_ingest) if not name.startswith("_")
    } - {"errors"}


def test_the_stop_summary_after_an_outage_agrees_with_the_log(pipeline: Pipeline) -> None:
    sink = FakeSink()
    sink.fail = [SinkError("down", retryable=True, status=503) for _ in range(10)]
    waits = iter([True, True, True, False])  # three retry waits, then the stop cuts one short
    source = FakeSource()
    writer = BatchWriter(sink, Backoff(0.1, 1.0, random.Random(0)), lambda _s: next(waits))
    service = IngestService(
        source=source, pipeline=pipeline, writer=writer, clock=ManualClock(NOW_MS / 1000),
        instance="t1", batch_size=3, batch_interval_s=0.1, pending_batches=10,
        stats_interval_s=60, deadletter_topic="dl",
    )  # fmt: skip
    source.inbox.extend(FakeMessage(TOPIC, good(i), mid=i + 1) for i in range(7))
    with capture_logs() as logs:
        service.process_pending()
        service._stop.set()
        service._write_loop()  # the writer thread's loop: gives up on the first batch
        service.stop()
    summary = next(e for e in logs if e["event"] == "ingest_stopped")
    retries = [e for e in logs if e["event"] == "sink_write_retry"]
    abandoned = [e for e in logs if e["event"] == "ingest_abandoned_batch"]
    assert (summary["received"], summary["written"], summary["abandoned"]) == (7, 0, 7)
    assert summary["retries"] == len(retries) == 4
    assert sum(e["messages"] for e in abandoned) == 3  # the rest never left the queue
    assert source.acks == []


def test_rejects_are_logged_with_counts_per_reason_and_rate_limited(pipeline: Pipeline) -> None:
    clock = ManualClock(NOW_MS / 1000)
    sink = FakeSink()
    source = FakeSource()
    writer = BatchWriter(sink, Backoff(0.1, 1.0, random.Random(0)), lambda _s: True)
    service = IngestService(
        source=source, pipeline=pipeline, writer=writer, clock=clock,
        instance="t1", batch_size=3, batch_interval_s=0.1, pending_batches=100,
        stats_interval_s=10, deadletter_topic="dl",
    )  # fmt: skip
    bad = [b"{oops", b"[1]", good(1)]
    with capture_logs() as logs:
        for _second in range(30):
            source.inbox.extend(FakeMessage(TOPIC, p, mid=i + 1) for i, p in enumerate(bad))
            service.process_pending()
            drain(service)
            clock.advance(1.0)
        service.stop()
    rejected = [e for e in logs if e["event"] == "messages_rejected"]
    assert [e["log_level"] for e in rejected] == ["warning"] * len(rejected)
    assert 3 <= len(rejected) <= 5  # once at first, then at most every 10 s, then at stop
    assert rejected[0]["counts"] == {"malformed_json": 1, "schema": 1}
    total = {"malformed_json": 0, "schema": 0}
    for event in rejected:
        for reason, count in event["counts"].items():
            total[reason] += count
    assert total == {"malformed_json": 30, "schema": 30}
    summary = next(e for e in logs if e["event"] == "ingest_stopped")
    assert summary["rejected"] == sum(e["total"] for e in rejected) == 60
