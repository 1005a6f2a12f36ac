"""The per-message path: valid lines, and every refusal with its reason."""

from __future__ import annotations

import msgspec
import pytest

from cloud_ingest import Limits, Pipeline, SeqTracker
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.registry import Registry
from tests.unit.cloud_ingest.conftest import NOW_MS

TOPIC = "xh/v1/jiaojiang/drain/drain-001/telemetry"


def tm(**overrides: object) -> bytes:
    msg: dict[str, object] = {
        "v": 1, "device_id": "drain-001", "ts": NOW_MS, "seq": 7, "boot_id": "b1",
        "readings": {"level_m": 1.25},
    }  # fmt: skip
    msg.update(overrides)
    return msgspec.json.encode(msg)


def reason_of(pipeline: Pipeline, topic: str, payload: bytes) -> RejectReason:
    with pytest.raises(RejectedMessage) as info:
        pipeline.process(topic, payload, NOW_MS)
    return info.value.reason


def test_valid_message_becomes_one_line_with_registry_tags(pipeline: Pipeline) -> None:
    accepted = pipeline.process(TOPIC, tm(readings={"level_m": 1.25, "flow_m3s": 2}), NOW_MS)
    assert accepted.line == (
        f"drain,device_id=drain-001,district=jiaojiang level_m=1.25,flow_m3s=2.0,seq=7i "
        f"{NOW_MS}000000"
    )
    assert accepted.ts_ms == NOW_MS
    assert not accepted.duplicate


def test_quality_flags_and_historical_become_fields(pipeline: Pipeline) -> None:
    payload = tm(
        quality={"level_m": "stuck", "flow_m3s": "good"},
        readings={"level_m": 1.0, "flow_m3s": 0.5},
        historical=True,
        ts=NOW_MS - 10 * 86_400_000,
    )
    line = pipeline.process(TOPIC, payload, NOW_MS).line
    assert 'level_m__q="stuck"' in line
    assert "flow_m3s__q" not in line
    assert "historical=true" in line


def test_out_of_range_is_flagged_by_default(pipeline: Pipeline) -> None:
    line = pipeline.process(TOPIC, tm(readings={"level_m": 99.0}), NOW_MS).line
    assert 'level_m=99.0,seq=7i,level_m__q="out_of_range"' in line


def test_out_of_range_is_rejected_by_policy(registry: Registry) -> None:
    strict = Pipeline(registry, Limits(range_policy="reject"), SeqTracker())
    assert reason_of(strict, TOPIC, tm(readings={"level_m": 99.0})) is RejectReason.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("xh/v1/jiaojiang/drain", tm(), RejectReason.BAD_TOPIC),
        ("xh/v1/jiaojiang/drain/drain-001/cmd", tm(), RejectReason.BAD_TOPIC),
        ("xh/v1/Jiao,x=1/drain/drain-001/telemetry", tm(), RejectReason.BAD_TOPIC),
        ("xh/v1/jiaojiang/drain/drain-999/telemetry", tm(device_id="drain-999"),
         RejectReason.UNKNOWN_DEVICE),
        ("xh/v1/luqiao/drain/drain-001/telemetry", tm(), RejectReason.TOPIC_MISMATCH),
        (TOPIC, tm(device_id="toilet-001"), RejectReason.TOPIC_MISMATCH),
        (TOPIC, b"{not json", RejectReason.MALFORMED_JSON),
        (TOPIC, b"\xff\xfe", RejectReason.NOT_UTF8),
        (TOPIC, tm(seq="seven"), RejectReason.SCHEMA),
        (TOPIC, tm(readings=None), RejectReason.SCHEMA),
        (TOPIC, tm().replace(b"1.25}", b"NaN}"), RejectReason.NON_FINITE),
        (TOPIC, tm(readings={"level_m": 1.5}).replace(b"1.5", b"1e999"), RejectReason.NON_FINITE),
        (TOPIC, tm(v=2), RejectReason.UNSUPPORTED_VERSION),
        (TOPIC, b" " * 20_000, RejectReason.OVERSIZED),
        (TOPIC, tm(ts=NOW_MS + 301_000), RejectReason.TS_FUTURE),
        (TOPIC, tm(ts=NOW_MS - 8 * 86_400_000), RejectReason.TS_PAST),
        (TOPIC, tm(ts=NOW_MS - 31 * 86_400_000, historical=True), RejectReason.TS_PAST),
        (TOPIC, tm(readings={"nh3_mgm3": 1.0}), RejectReason.UNKNOWN_METRIC),
        (TOPIC, tm(quality={"bogus": "stuck"}), RejectReason.UNKNOWN_METRIC),
        (TOPIC, tm(readings={'level_m,x="1"': 1.0}), RejectReason.SCHEMA),
    ],
)  # fmt: skip
def test_every_bad_message_is_refused_with_its_reason(
    pipeline: Pipeline, topic: str, payload: bytes, reason: RejectReason
) -> None:
    assert reason_of(pipeline, topic, payload) is reason


def test_refusals_of_a_known_device_are_counted(pipeline: Pipeline) -> None:
    reason_of(pipeline, TOPIC, tm(ts=NOW_MS + 10**9))
    reason_of(pipeline, "xh/v1/luqiao/drain/drain-001/telemetry", tm())
    assert pipeline.tracker.counters("drain-001").rejected == 2


def test_redelivered_copy_is_a_duplicate(pipeline: Pipeline) -> None:
    pipeline.process(TOPIC, tm(seq=1), NOW_MS)
    assert pipeline.process(TOPIC, tm(seq=1), NOW_MS).duplicate


def test_topic_tags_keep_only_known_districts(pipeline: Pipeline) -> None:
    assert pipeline.topic_tags("xh/v1/jiaojiang/drain/x-1/telemetry") == (
        "jiaojiang", "drain", "x-1",
    )  # fmt: skip
    assert pipeline.topic_tags("xh/v1/atlantis/drain/x-1/telemetry") == (None, "drain", "x-1")
    assert pipeline.topic_tags("nonsense") == (None, None, None)
