"""Payload decoding: one pass of msgspec, every refusal with a machine-readable reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.schema import (
    Command,
    Event,
    Severity,
    Status,
    Telemetry,
    decode,
    encode,
)

GOOD: dict[str, Any] = {
    "v": 1,
    "device_id": "dr-jj-000123",
    "ts": 1764000000123,
    "seq": 42,
    "boot_id": "5f2c9a1e",
    "readings": {"level_m": 1.234, "flow_m3s": 0.456},
}


def _payload(**changes: Any) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_decodes_the_documented_example() -> None:
    msg = decode(_payload(), Telemetry)
    assert msg.device_id == "dr-jj-000123"
    assert msg.readings == {"level_m": 1.234, "flow_m3s": 0.456}
    assert msg.historical is False
    assert msg.quality is None


def test_round_trips_through_encode() -> None:
    msg = decode(_payload(quality={"level_m": "suspect"}, historical=True), Telemetry)
    assert decode(encode(msg), Telemetry) == msg


def test_integers_become_floats_and_unknown_fields_are_ignored() -> None:
    msg = decode(_payload(readings={"level_m": 2}, firmware_extra="x"), Telemetry)
    assert msg.readings == {"level_m": 2.0}
    assert isinstance(msg.readings["level_m"], float)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", RejectReason.MALFORMED_JSON),
        (b"", RejectReason.MALFORMED_JSON),
        (b"\xff\xfe\x00", RejectReason.NOT_UTF8),
        (b"[1, 2, 3]", RejectReason.SCHEMA),
        (_payload(v=2), RejectReason.UNSUPPORTED_VERSION),
        (_payload(ts="1764000000123"), RejectReason.SCHEMA),
        (_payload(ts=-1), RejectReason.SCHEMA),
        (_payload(seq=1.5), RejectReason.SCHEMA),
        (_payload(readings={}), RejectReason.SCHEMA),
        (_payload(readings={"level_m": "1.2"}), RejectReason.SCHEMA),
        (_payload(readings={"level_m": True}), RejectReason.SCHEMA),
        (_payload(readings={"Level M": 1.0}), RejectReason.SCHEMA),
        (_payload(readings={"level_m": None}), RejectReason.SCHEMA),
        (_payload(device_id="DR 1"), RejectReason.SCHEMA),
        (_payload(device_id="dr,jj=1"), RejectReason.SCHEMA),
        (_payload(boot_id="a b"), RejectReason.SCHEMA),
        (_payload(readings=...), RejectReason.SCHEMA),
        (_payload(device_id=...), RejectReason.SCHEMA),
        (_payload(readings={"level_m": 1e400}), RejectReason.NON_FINITE),
        (_payload().replace(b"1.234", b"NaN"), RejectReason.NON_FINITE),
        (_payload().replace(b"1.234", b"Infinity"), RejectReason.NON_FINITE),
        (b"{" + b" " * 20_000 + b"}", RejectReason.OVERSIZED),
    ],
)
def test_refuses_with_reason(payload: bytes, reason: RejectReason) -> None:
    with pytest.raises(RejectedMessage) as info:
        decode(payload, Telemetry)
    assert info.value.reason is reason
    assert info.value.detail


def test_size_limit_is_configurable() -> None:
    with pytest.raises(RejectedMessage) as info:
        decode(_payload(), Telemetry, max_bytes=10)
    assert info.value.reason is RejectReason.OVERSIZED


def test_event_status_and_command() -> None:
    event = decode(
        b'{"v":1,"device_id":"wc-hy-1","ts":1,"seq":1,"boot_id":"b","type":"threshold_crossed",'
        b'"severity":"critical","metric":"nh3_mgm3","value":3.5}',
        Event,
    )
    assert event.severity is Severity.CRITICAL
    status = decode(b'{"v":1,"device_id":"wc-hy-1","ts":1,"boot_id":"b","state":"offline"}', Status)
    assert status.state == "offline"
    with pytest.raises(RejectedMessage):
        decode(b'{"v":1,"device_id":"wc-hy-1","ts":1,"boot_id":"b","state":"asleep"}', Status)
    command = decode(b'{"v":1,"cmd_id":"c1","ts":1,"op":"restart"}', Command)
    assert command.config == {}
    with pytest.raises(RejectedMessage):
        decode(b'{"v":1,"cmd_id":"c1","ts":1,"op":"format_disk"}', Command)
