"""Payloads of the wire contract as msgspec structs: decoded and validated in one pass.

Unknown fields are ignored so that fields may be added to the contract without breaking old
parsers; fields are never renamed. Every refusal is a :class:`RejectedMessage` with a reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from telemetry_core.errors import RejectedMessage, RejectReason

CONTRACT_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 16_384
"""Larger payloads are refused before decoding (``oversized``)."""

DeviceIdStr = Annotated[
    str, msgspec.Meta(pattern=r"^(?:[a-z0-9][a-z0-9-]{1,62}[a-z0-9]|[a-z0-9]{3})$")
]
BootIdStr = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
MetricName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
TimestampMs = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999)]
SeqNo = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
ShortText = Annotated[str, msgspec.Meta(max_length=512)]
Readings = Annotated[dict[MetricName, float], msgspec.Meta(min_length=1, max_length=64)]
QualityFlags = Annotated[dict[MetricName, ShortText], msgspec.Meta(max_length=64)]


class Quality(StrEnum):
    """Per-metric quality flags: on the wire from the device, in storage from the ingester."""

    GOOD = "good"
    SUSPECT = "suspect"
    OUT_OF_RANGE = "out_of_range"
    STUCK = "stuck"
    SPIKE_FILTERED = "spike_filtered"
    SENSOR_FAULT = "sensor_fault"


class Telemetry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A batch of readings from one device at one instant.

    Optional fields at their default (no ``quality``, not ``historical``) are left out of the
    encoded JSON, as the contract has them: never ``"quality": null``.
    """

    v: int
    device_id: DeviceIdStr
    ts: TimestampMs
    seq: SeqNo
    boot_id: BootIdStr
    readings: Readings
    quality: QualityFlags | None = None
    historical: bool = False


class Severity(StrEnum):
    """How urgent a device event is, as the device sees it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened on a device: a local threshold crossed, a fault, a drop report."""

    v: int
    device_id: DeviceIdStr
    ts: TimestampMs
    seq: SeqNo
    boot_id: BootIdStr
    type: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    severity: Severity = Severity.INFO
    metric: MetricName | None = None
    value: float | None = None
    message: ShortText = ""
    data: Annotated[dict[MetricName, float | int | str | bool], msgspec.Meta(max_length=64)] = {}
    historical: bool = False


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """Birth (``online``, retained) and last will (``offline``, retained) of a device."""

    v: int
    device_id: DeviceIdStr
    ts: TimestampMs
    boot_id: BootIdStr
    state: Literal["online", "offline"]
    firmware: ShortText = ""
    config_version: Annotated[int, msgspec.Meta(ge=0)] = 0
    reason: ShortText = ""


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """A command to a device on its ``cmd`` channel."""

    v: int
    cmd_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
    ts: TimestampMs
    op: Literal["set_config", "restart", "publish_status"]
    config: dict[str, Any] = {}


class CommandAck(msgspec.Struct, frozen=True, kw_only=True):
    """A device's answer to a command: applied, or refused with a reason."""

    v: int
    cmd_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
    device_id: DeviceIdStr
    ts: TimestampMs
    ok: bool
    reason: ShortText = ""
    config_version: Annotated[int, msgspec.Meta(ge=0)] = 0


T = TypeVar("T", Telemetry, Event, Status, Command, CommandAck)
Buffer = bytes | bytearray | memoryview
"""What paho hands over as a payload; msgspec decodes any of them without a copy."""

_DECODERS: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    Telemetry: msgspec.json.Decoder(Telemetry),
    Event: msgspec.json.Decoder(Event),
    Status: msgspec.json.Decoder(Status),
    Command: msgspec.json.Decoder(Command),
    CommandAck: msgspec.json.Decoder(CommandAck),
}
_ENCODER: Final = msgspec.json.Encoder()


def decode(payload: Buffer, kind: type[T], max_bytes: int = MAX_PAYLOAD_BYTES) -> T:
    """Decode and validate ``payload`` as ``kind``; every refusal is a ``RejectedMessage``."""
    if len(payload) > max_bytes:
        raise RejectedMessage(RejectReason.OVERSIZED, f"{len(payload)} bytes > {max_bytes}")
    try:
        msg: T = _DECODERS[kind].decode(payload)
    except msgspec.ValidationError as exc:
        text = str(exc)
        reason = RejectReason.NON_FINITE if "out of range" in text.lower() else RejectReason.SCHEMA
        raise RejectedMessage(reason, text) from exc
    except msgspec.DecodeError as exc:
        reason = _decode_error_reason(payload)
        raise RejectedMessage(reason, str(exc)) from exc
    if msg.v != CONTRACT_VERSION:
        raise RejectedMessage(
            RejectReason.UNSUPPORTED_VERSION, f"v={msg.v}, want {CONTRACT_VERSION}"
        )
    return msg


def _decode_error_reason(payload: Buffer) -> RejectReason:
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return RejectReason.NOT_UTF8
    if any(token in text for token in ("NaN", "Infinity")):
        return RejectReason.NON_FINITE
    return RejectReason.MALFORMED_JSON


def encode(message: Telemetry | Event | Status | Command | CommandAck) -> bytes:
    """Encode a message as compact UTF-8 JSON."""
    return _ENCODER.encode(message)
