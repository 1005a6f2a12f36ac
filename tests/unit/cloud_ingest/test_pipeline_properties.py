"""Properties of the ingest path (hypothesis): decode -> validate -> line protocol never raises
anything but ``RejectedMessage``; what it accepts, and every dead-letter point, is line protocol
that a strict parser (``tests.lineproto``) reads back inside InfluxDB's int64 ranges."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_ingest import Limits, Pipeline, SeqTracker
from cloud_ingest._batch import BatchBuilder
from telemetry_core.errors import RejectedMessage
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from tests import strategies as s
from tests.lineproto import parse_line
from tests.unit.cloud_ingest.conftest import NOW_MS, FakeMessage

FLEET = Registry(
    [
        Device("drain-001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {}),
        Device("toilet-001", DeviceKind.TOILET, "luqiao", 28.5, 121.3, 60.0, {}),
    ]
)
CHANNELS = ["telemetry", "event", "status"]
GOOD_TOPICS = [f"xh/v1/jiaojiang/drain/drain-001/{c}" for c in CHANNELS]
topics = st.one_of(
    st.sampled_from(GOOD_TOPICS),
    st.sampled_from(GOOD_TOPICS).map(lambda t: t.replace("drain-001", "drain-002")),
    st.sampled_from(GOOD_TOPICS).map(lambda t: t.replace("jiaojiang", "luqiao")),
    st.builds(lambda a, b: f"xh/v1/{a}/drain/{b}/telemetry", s.HOSTILE_TEXT, s.HOSTILE_TEXT),
    s.HOSTILE_TEXT,
)


def payloads_for(topic: str) -> st.SearchStrategy[bytes]:
    channel = topic.rsplit("/", 1)[-1]
    kind = channel if channel in CHANNELS else "telemetry"
    shaped = s.contract_like(kind, "drain-001", NOW_MS).map(msgspec.json.encode)
    return st.one_of(shaped, shaped, st.binary(max_size=300), _json_bytes())


def _json_bytes() -> st.SearchStrategy[bytes]:
    def encode(value: Any) -> bytes:
        try:
            return msgspec.json.encode(value)
        except (OverflowError, TypeError):
            return b"null"

    return s.json_values(20).map(encode)


messages = topics.flatmap(lambda t: st.tuples(st.just(t), payloads_for(t)))
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = range(-(2**63), 2**63)


@PROPS
@given(message=messages)
def test_the_pipeline_accepts_valid_line_protocol_or_refuses_with_a_reason(
    message: tuple[str, bytes],
) -> None:
    topic, payload = message
    pipeline = Pipeline(FLEET, Limits(), SeqTracker())
    try:
        accepted = pipeline.process(topic, payload, NOW_MS)
    except RejectedMessage:
        return
    point = parse_line(accepted.line)
    assert point.measurement in {"drain", "device_events", "device_status"}
    assert point.tags["device_id"] == "drain-001"
    assert point.tags["district"] == "jiaojiang"
    assert point.time_ns is not None
    assert all(v in INT64 for v in point.fields.values() if isinstance(v, int))


@settings(PROPS, max_examples=50)
@given(batch=st.lists(messages, min_size=1, max_size=5))
def test_a_batch_of_anything_becomes_points_and_dead_letters_that_parse(
    batch: list[tuple[str, bytes]],
) -> None:
    builder = BatchBuilder(Pipeline(FLEET, Limits(), SeqTracker()), "i-1")
    built = builder.build([FakeMessage(t, p, i) for i, (t, p) in enumerate(batch)], 0, NOW_MS)
    assert built.accepted + len(built.rejections) == len(batch)
    for line in built.lines:
        parse_line(line)
        line.encode("utf-8")  # what the writer sends: no lone surrogates
    assert all(r.reason.value != "internal_error" for r in built.rejections)
