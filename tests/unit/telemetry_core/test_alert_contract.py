"""The engine's output on the wire: alert transitions and incidents (contract §5)."""

from __future__ import annotations

import pytest

from telemetry_core import (
    TIERS,
    AlertTransition,
    Incident,
    Prediction,
    RejectedMessage,
    alert_subscription,
    alert_topic,
    decode,
    encode,
    incident_subscription,
    incident_topic,
)
from telemetry_core.errors import ContractError


def _transition(**overrides: object) -> AlertTransition:
    fields: dict[str, object] = {
        "v": 1,
        "transition_id": "t-0123abcd",
        "alert_id": "a-89ef",
        "device_id": "dr-jj-000001",
        "district": "jiaojiang",
        "kind": "drain",
        "rule": "drain.overflow_predicted",
        "category": "overflow",
        "tier_from": "yellow",
        "tier_to": "orange",
        "value": 0.93,
        "prediction": Prediction(
            metric="depth_below_ground_m", time_to_s=840.0, horizon_s=1800.0, rate_per_s=0.002
        ),
        "reason": "overflow expected in 14 min",
        "ts": 1_786_291_200_000,
    }
    fields.update(overrides)
    return AlertTransition(**fields)  # type: ignore[arg-type]


def test_a_transition_round_trips_with_its_prediction() -> None:
    msg = _transition()
    back = decode(encode(msg), AlertTransition)
    assert back == msg
    assert back.flapping is False
    assert back.notify is True
    assert back.incident_id is None


def test_tiers_are_ordered_lowest_first() -> None:
    assert TIERS == ("none", "blue", "yellow", "orange", "red")


@pytest.mark.parametrize(
    ("field", "value"),
    [("tier_to", "purple"), ("category", "weather"), ("device_id", "-bad-"), ("rule", "Bad")],
)
def test_a_transition_with_a_bad_field_is_refused(field: str, value: str) -> None:
    raw = encode(_transition()).replace(
        f'"{field}":"{getattr(_transition(), field)}"'.encode(), f'"{field}":"{value}"'.encode()
    )
    with pytest.raises(RejectedMessage, match=field):
        decode(raw, AlertTransition)


def test_an_incident_round_trips() -> None:
    msg = Incident(
        v=1,
        id="inc-jiaojiang-1786291200000-jj-J011",
        district="jiaojiang",
        root_unit="jj-J011",
        root_device_id="dr-jj-000003",
        units=("jj-J011", "jj-J012"),
        device_ids=("dr-jj-000001", "dr-jj-000003"),
        tier="red",
        opened_ts=1_786_291_200_000,
        updated_ts=1_786_291_260_000,
        state="open",
        category="overflow",
    )
    assert decode(encode(msg), Incident) == msg


def test_alert_topics_live_outside_the_device_topics() -> None:
    assert alert_topic("jiaojiang", "dr-jj-000001") == "xh/v1/_alert/jiaojiang/dr-jj-000001"
    assert incident_topic("jiaojiang", "inc-1") == "xh/v1/_incident/jiaojiang/inc-1"
    assert alert_subscription() == "xh/v1/_alert/+/+"
    assert incident_subscription("luqiao") == "xh/v1/_incident/luqiao/+"
    with pytest.raises(ContractError, match="district"):
        alert_topic("Jiao", "dr-jj-000001")
    with pytest.raises(ContractError, match="incident id"):
        incident_topic("jiaojiang", "a/b")
