"""The alerting service's messages in the ingester: points, idempotent keys, refusals."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_ingest import Limits, Pipeline, SeqTracker
from cloud_ingest._alerts import alert_filters, offset_ns
from telemetry_core.alerting_wire import AlertingStats
from telemetry_core.errors import RejectedMessage
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from telemetry_core.schema import AlertTransition, Incident, Prediction, encode

NOW_MS = 1_764_000_000_000
TOPIC = "xh/v1/_alert/jiaojiang/dr-jj-000001"


@pytest.fixture
def pipeline() -> Pipeline:
    registry = Registry(
        [Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {})]
    )
    return Pipeline(registry, Limits(), SeqTracker())


def transition(**changes: object) -> AlertTransition:
    base = AlertTransition(
        v=1, transition_id="t-1", alert_id="a-1", device_id="dr-jj-000001",
        district="jiaojiang", kind="drain", rule="drain_overflow", category="overflow",
        tier_from="yellow", tier_to="orange", value=0.82, reason="fill 0.82 >= 0.8 for 5m",
        ts=NOW_MS - 1000,
        prediction=Prediction(metric="depth_below_ground_m", time_to_s=900.0, horizon_s=1800.0,
                              rate_per_s=0.001),
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def test_a_transition_becomes_an_event_and_the_state_of_its_device(pipeline: Pipeline) -> None:
    msg = transition()
    event, state = pipeline.process(TOPIC, encode(msg), NOW_MS).line.split("\n")
    assert event.startswith(
        "alert_events,category=overflow,device_id=dr-jj-000001,district=jiaojiang,kind=drain,"
        "rule=drain_overflow,tier_to=orange "
    )
    assert 'transition_id="t-1"' in event
    assert "prediction_time_to_s=900.0" in event
    assert "notify=true" in event
    assert event.endswith(f" {(NOW_MS - 1000) * 1_000_000 + offset_ns('t-1')}")
    assert state == (
        "alert_state,device_id=dr-jj-000001,district=jiaojiang,kind=drain,rule=drain_overflow "
        f'tier="orange",tier_rank=3i,alert_id="a-1",flapping=false {(NOW_MS - 1000) * 1_000_000}'
    )


def test_a_re_emitted_transition_writes_the_same_point_and_two_of_one_reading_do_not_collide(
    pipeline: Pipeline,
) -> None:
    first = pipeline.process(TOPIC, encode(transition()), NOW_MS).line
    again = pipeline.process(TOPIC, encode(transition()), NOW_MS + 5000).line
    assert first == again
    other = pipeline.process(TOPIC, encode(transition(transition_id="t-2", tier_to="red")), NOW_MS)
    assert first.split("\n")[0].rsplit(" ", 1)[1] != other.line.split("\n")[0].rsplit(" ", 1)[1]


@pytest.mark.parametrize(
    ("topic", "msg", "reason"),
    [
        ("xh/v1/_alert/huangyan/dr-jj-000001", transition(), "topic_mismatch"),
        ("xh/v1/_alert/jiaojiang/dr-jj-000002", transition(), "unknown_device"),
        (TOPIC, transition(kind="toilet"), "topic_mismatch"),
        ("xh/v1/_alert/jiaojiang", transition(), "bad_topic"),
    ],
)
def test_a_transition_that_does_not_match_the_registry_is_refused(
    pipeline: Pipeline, topic: str, msg: AlertTransition, reason: str
) -> None:
    with pytest.raises(RejectedMessage) as err:
        pipeline.process(topic, encode(msg), NOW_MS)
    assert err.value.reason.value == reason


def test_incidents_stats_and_dead_letters_are_stored(pipeline: Pipeline) -> None:
    incident = Incident(
        v=1, id="inc-1", district="jiaojiang", root_unit="jj-J012", root_device_id="dr-jj-000001",
        units=("jj-J012", "jj-J013"), device_ids=("dr-jj-000001",), tier="red",
        opened_ts=NOW_MS - 60_000, updated_ts=NOW_MS - 1000, state="open", category="overflow",
    )  # fmt: skip
    line = pipeline.process("xh/v1/_incident/jiaojiang/inc-1", encode(incident), NOW_MS).line
    assert line.startswith("alert_incidents,category=overflow,district=jiaojiang,state=open ")
    assert "unit_count=2i" in line
    stats = AlertingStats(
        v=1, instance="al-1", ts=NOW_MS, received=5, evaluated=4, transitions=1, incidents=0,
        rejected=1, checkpoints=3, backlog=0, unconfirmed=0, lag_ms=12, state_bytes=100,
    )  # fmt: skip
    stats_line = pipeline.process(
        "xh/v1/_alerting/al-1/stats", msgspec.json.encode(stats), NOW_MS
    ).line
    assert stats_line.startswith("alerting_stats,instance=al-1 received=5i,evaluated=4i")
    with pytest.raises(RejectedMessage):
        pipeline.process("xh/v1/_alerting/al-2/stats", msgspec.json.encode(stats), NOW_MS)
    letter = {"topic": "x", "payload": "{", "reason": "malformed_json", "detail": "d",
              "received_at": "2025", "received_ms": NOW_MS, "instance": "al-1"}  # fmt: skip
    dl = pipeline.process("xh/v1/_deadletter/alerting", msgspec.json.encode(letter), NOW_MS)
    assert dl.line.startswith("alerting_rejects,instance=al-1,reason=malformed_json ")


def test_filters_follow_the_partition() -> None:
    assert alert_filters(("luqiao",)) == [
        "xh/v1/_alert/luqiao/+", "xh/v1/_incident/luqiao/+", "xh/v1/_alerting/+/stats",
        "xh/v1/_deadletter/alerting",
    ]  # fmt: skip


_TOPICS = st.sampled_from(
    [TOPIC, "xh/v1/_incident/jiaojiang/i", "xh/v1/_alerting/a/stats", "xh/v1/_deadletter/alerting",
     "xh/v1/_alert/x", "xh/v1/_alerting/a/b"]
)  # fmt: skip
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=6),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(topic=_TOPICS, body=st.binary(max_size=200) | _JSONISH.map(msgspec.json.encode))
def test_whatever_arrives_on_an_alerting_topic_is_stored_or_refused_with_a_reason(
    topic: str, body: bytes
) -> None:
    registry = Registry(
        [Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {})]
    )
    pipeline = Pipeline(registry, Limits(), SeqTracker())
    try:
        accepted = pipeline.process(topic, body, NOW_MS)
    except RejectedMessage:
        return
    assert accepted.line


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False) | st.none(),
    reason=st.text(max_size=80),
    tier=st.sampled_from(["none", "blue", "yellow", "orange", "red"]),
)
def test_any_valid_transition_is_stored(value: float | None, reason: str, tier: str) -> None:
    registry = Registry(
        [Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {})]
    )
    pipeline = Pipeline(registry, Limits(), SeqTracker())
    msg = transition(value=value, reason=reason, tier_to=tier)
    assert pipeline.process(TOPIC, encode(msg), NOW_MS).line.count("\n") == 1
