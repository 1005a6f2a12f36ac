"""Events and statuses: stored with registry tags and stable field types, refused like telemetry."""

from __future__ import annotations

import msgspec
import pytest

from cloud_ingest import Pipeline, event_time_ns
from telemetry_core.errors import RejectedMessage, RejectReason
from tests.unit.cloud_ingest.conftest import NOW_MS

EVENT = "xh/v1/jiaojiang/drain/drain-001/event"
STATUS = "xh/v1/jiaojiang/drain/drain-001/status"
TELEMETRY = "xh/v1/jiaojiang/drain/drain-001/telemetry"


def ev(**overrides: object) -> bytes:
    msg: dict[str, object] = {
        "v": 1, "device_id": "drain-001", "ts": NOW_MS, "seq": 8, "boot_id": "b1",
        "type": "threshold_crossed", "severity": "critical",
    }  # fmt: skip
    msg.update(overrides)
    return msgspec.json.encode(msg)


def st(**overrides: object) -> bytes:
    msg: dict[str, object] = {
        "v": 1, "device_id": "drain-001", "ts": NOW_MS, "boot_id": "b1", "state": "online",
        "firmware": "1.4.2", "config_version": 7,
    }  # fmt: skip
    msg.update(overrides)
    return msgspec.json.encode(msg)


def reason_of(pipeline: Pipeline, topic: str, payload: bytes) -> RejectReason:
    with pytest.raises(RejectedMessage) as info:
        pipeline.process(topic, payload, NOW_MS)
    return info.value.reason


def test_event_line_has_registry_tags_and_typed_fields(pipeline: Pipeline) -> None:
    payload = ev(metric="level_m", value=2, message="level high",
                 data={"threshold": 2, "latched": True, "unit": "m"})  # fmt: skip
    accepted = pipeline.process(EVENT, payload, NOW_MS)
    assert accepted.line == (
        "device_events,device_id=drain-001,district=jiaojiang,kind=drain,severity=critical,"
        'type=threshold_crossed message="level high",seq=8i,value=2.0,metric="level_m",'
        f'data_threshold=2.0,data_latched=true,data_unit="m" {NOW_MS}000008'
    )
    assert (accepted.device_id, accepted.ts_ms, accepted.duplicate) == ("drain-001", NOW_MS, False)


def test_minimal_event_and_control_characters(pipeline: Pipeline) -> None:
    line = pipeline.process(EVENT, ev(severity="info", message="a\nb"), NOW_MS).line
    # Stored as the four characters \x0a (escaped once more by line protocol).
    assert 'severity=info,type=threshold_crossed message="a\\\\x0ab",seq=8i ' in line


def test_events_of_one_millisecond_get_distinct_times() -> None:
    assert event_time_ns(NOW_MS, 8) != event_time_ns(NOW_MS, 9)
    assert event_time_ns(NOW_MS, 1_000_007) == NOW_MS * 1_000_000 + 7


def test_events_share_the_telemetry_sequence(pipeline: Pipeline) -> None:
    telemetry = msgspec.json.encode(
        {"v": 1, "device_id": "drain-001", "ts": NOW_MS, "seq": 7, "boot_id": "b1",
         "readings": {"level_m": 1.0}}
    )  # fmt: skip
    pipeline.process(TELEMETRY, telemetry, NOW_MS)
    pipeline.process(EVENT, ev(seq=8), NOW_MS)
    assert pipeline.process(EVENT, ev(seq=8), NOW_MS).duplicate
    counters = pipeline.tracker.counters("drain-001")
    assert (counters.received, counters.gaps, counters.duplicates) == (3, 0, 1)


def test_status_line_and_receive_time_for_latency(pipeline: Pipeline) -> None:
    old_ts = NOW_MS - 20 * 86_400_000  # a retained birth from three weeks ago is still valid
    accepted = pipeline.process(STATUS, st(ts=old_ts, reason="boot"), NOW_MS)
    assert accepted.line == (
        "device_status,device_id=drain-001,district=jiaojiang,kind=drain,state=online "
        f'firmware="1.4.2",config_version=7i,boot_id="b1",reason="boot" {old_ts}000000'
    )
    assert accepted.ts_ms == NOW_MS
    assert pipeline.tracker.counters("drain-001").received == 0  # statuses carry no seq


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (EVENT, b"{nope", RejectReason.MALFORMED_JSON),
        (EVENT, ev(type="Bad Type"), RejectReason.SCHEMA),
        (EVENT, ev(severity="panic"), RejectReason.SCHEMA),
        (EVENT, ev(device_id="drain-002"), RejectReason.TOPIC_MISMATCH),
        ("xh/v1/luqiao/drain/drain-001/event", ev(), RejectReason.TOPIC_MISMATCH),
        ("xh/v1/jiaojiang/drain/drain-999/event", ev(device_id="drain-999"),
         RejectReason.UNKNOWN_DEVICE),
        (EVENT, ev(metric="nh3_mgm3"), RejectReason.UNKNOWN_METRIC),
        (EVENT, ev(ts=NOW_MS + 3_600_000), RejectReason.TS_FUTURE),
        (EVENT, ev(ts=NOW_MS - 8 * 86_400_000), RejectReason.TS_PAST),
        (EVENT, ev(value=1).replace(b'"value":1', b'"value":1e999'), RejectReason.NON_FINITE),
        (EVENT, ev(data={"n": 10**400}), RejectReason.SCHEMA),
        (EVENT, ev(data={"n": None}), RejectReason.SCHEMA),
        (EVENT, ev(v=2), RejectReason.UNSUPPORTED_VERSION),
        (STATUS, b"", RejectReason.MALFORMED_JSON),
        (STATUS, st(state="sleeping"), RejectReason.SCHEMA),
        (STATUS, st(device_id="toilet-001"), RejectReason.TOPIC_MISMATCH),
        (STATUS, st(ts=NOW_MS - 31 * 86_400_000), RejectReason.TS_PAST),
        (STATUS, st(ts=NOW_MS + 3_600_000), RejectReason.TS_FUTURE),
        ("xh/v1/jiaojiang/drain/drain-001/cmd_ack", st(), RejectReason.BAD_TOPIC),
    ],
)  # fmt: skip
def test_bad_events_and_statuses_are_refused_with_reasons(
    pipeline: Pipeline, topic: str, payload: bytes, reason: RejectReason
) -> None:
    assert reason_of(pipeline, topic, payload) is reason


def test_refusals_count_against_the_device(pipeline: Pipeline) -> None:
    reason_of(pipeline, EVENT, ev(metric="bogus"))
    reason_of(pipeline, STATUS, st(state="?"))
    assert pipeline.tracker.counters("drain-001").rejected == 2
