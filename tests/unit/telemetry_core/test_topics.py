"""Topics of the wire contract: build, print, parse and refuse."""

from __future__ import annotations

import pytest

from telemetry_core.errors import ContractError, RejectedMessage, RejectReason
from telemetry_core.kinds import DeviceKind
from telemetry_core.topics import Channel, Topic, gateway_status_topic, parse_topic, subscription


def test_round_trip() -> None:
    topic = Topic("jiaojiang", DeviceKind.DRAIN, "dr-jj-000123", Channel.TELEMETRY)
    assert str(topic) == "xh/v1/jiaojiang/drain/dr-jj-000123/telemetry"
    assert parse_topic(str(topic)) == topic
    assert str(topic.sibling(Channel.STATUS)).endswith("/dr-jj-000123/status")


@pytest.mark.parametrize(
    "bad",
    [
        "xh/v1/jiaojiang/drain/dr-jj-000123",
        "xh/v2/jiaojiang/drain/dr-jj-000123/telemetry",
        "xh/v1/JiaoJiang/drain/dr-jj-000123/telemetry",
        "xh/v1/jiaojiang/sewer/dr-jj-000123/telemetry",
        "xh/v1/jiaojiang/drain/DR-JJ-1/telemetry",
        "xh/v1/jiaojiang/drain/-dr-jj/telemetry",
        "xh/v1/jiaojiang/drain/dr/telemetry",
        "xh/v1/jiaojiang/drain/" + "a" * 65 + "/telemetry",
        "xh/v1/jiaojiang/drain/dr-jj-1/metrics",
        "xh/v1/jiaojiang/drain/dr jj/telemetry",
        "xh/v1/jiaojiang/drain/dr-jj-1/telemetry/extra",
        "",
    ],
)
def test_parse_refuses_malformed_topics(bad: str) -> None:
    with pytest.raises(RejectedMessage) as info:
        parse_topic(bad)
    assert info.value.reason is RejectReason.BAD_TOPIC


def test_building_refuses_bad_parts() -> None:
    with pytest.raises(ContractError, match="device id"):
        Topic("jiaojiang", DeviceKind.DRAIN, "Bad_Id", Channel.TELEMETRY)
    with pytest.raises(ContractError, match="district"):
        Topic("椒江", DeviceKind.DRAIN, "dr-jj-1", Channel.TELEMETRY)


def test_device_id_lengths() -> None:
    assert parse_topic("xh/v1/jj/drain/abc/telemetry").device_id == "abc"
    assert parse_topic("xh/v1/jj/drain/" + "a" * 64 + "/telemetry").device_id == "a" * 64


def test_subscriptions() -> None:
    assert subscription() == "xh/v1/+/+/+/+"
    assert (
        subscription(Channel.TELEMETRY, share_group="ingest")
        == "$share/ingest/xh/v1/+/+/+/telemetry"
    )
    assert subscription(Channel.EVENT, "luqiao", DeviceKind.TOILET) == "xh/v1/luqiao/toilet/+/event"


def test_gateway_status_lives_outside_the_device_topics() -> None:
    topic = gateway_status_topic("gw-jj-01")
    assert topic == "xh/v1/_gateway/gw-jj-01/status"
    # Five levels under xh/v1 would be a device topic; a gateway's has four.
    with pytest.raises(RejectedMessage):
        parse_topic(topic)
    with pytest.raises(ContractError):
        gateway_status_topic("GW 1")
