"""Payloads of the wire contract as msgspec structs: decoded and validated in one pass.

Unknown fields are ignored so that fields may be added to the contract without breaking old
parsers; fields are never renamed. Every refusal is a :class:`RejectedMessage` with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from telemetry_core.errors import RejectedMessage, RejectReason

CONTRACT_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 16_384
"""Larger payloads are refused before decoding (``oversized``)."""

# Integer bounds. Every integer of the contract ends up in InfluxDB (int64 fields, int64
# nanosecond times) or in the ingester's accounting (seq differences, gap sums), so each has a
# bound that keeps all of that exact and inside int64; docs/contract.md lists them.
SAFE_INT_MAX: Final = 2**53 - 1
"""The largest integer a double (JSON in JavaScript, Grafana, float fields) holds exactly."""
MAX_TS_MS: Final = 9_223_372_036_853
"""2262-04-11T23:47:16.853Z: the last millisecond whose nanoseconds, plus an event's sub-ms
offset (``seq mod 1e6``), still fit InfluxDB's int64 time."""
MAX_VERSION: Final = 2**31 - 1

# Patterns are whole-string: msgspec applies them with ``re.search``, and ``$`` would admit a
# final newline, so they are anchored with ``\A`` and ``\Z``.
DeviceIdStr = Annotated[
    str, msgspec.Meta(pattern=r"\A(?:[a-z0-9][a-z0-9-]{1,62}[a-z0-9]|[a-z0-9]{3})\Z")
]
IdStr = Annotated[str, msgspec.Meta(pattern=r"\A[0-9A-Za-z_-]{1,64}\Z")]
BootIdStr = IdStr
MetricName = Annotated[str, msgspec.Meta(pattern=r"\A[a-z][a-z0-9_]{0,63}\Z")]
TimestampMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_TS_MS)]
SeqNo = Annotated[int, msgspec.Meta(ge=0, le=SAFE_INT_MAX)]
Version = Annotated[int, msgspec.Meta(ge=0, le=MAX_VERSION)]
ConfigVersion = Annotated[int, msgspec.Meta(ge=0, le=SAFE_INT_MAX)]
DataInt = Annotated[int, msgspec.Meta(ge=-SAFE_INT_MAX, le=SAFE_INT_MAX)]
ShortText = Annotated[str, msgspec.Meta(max_length=512)]
Readings = Annotated[dict[MetricName, float], msgspec.Meta(min_length=1, max_length=64)]
QualityFlags = Annotated[dict[MetricName, ShortText], msgspec.Meta(max_length=64)]
EventData = Annotated[dict[MetricName, DataInt | float | str | bool], msgspec.Meta(max_length=64)]


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

    v: Version
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

    v: Version
    device_id: DeviceIdStr
    ts: TimestampMs
    seq: SeqNo
    boot_id: BootIdStr
    type: MetricName
    severity: Severity = Severity.INFO
    metric: MetricName | None = None
    value: float | None = None
    message: ShortText = ""
    data: EventData = {}
    historical: bool = False


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """Birth (``online``, retained) and last will (``offline``, retained) of a device."""

    v: Version
    device_id: DeviceIdStr
    ts: TimestampMs
    boot_id: BootIdStr
    state: Literal["online", "offline"]
    firmware: ShortText = ""
    config_version: ConfigVersion = 0
    reason: ShortText = ""


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """A command to a device on its ``cmd`` channel."""

    v: Version
    cmd_id: IdStr
    ts: TimestampMs
    op: Literal["set_config", "restart", "publish_status"]
    config: dict[str, Any] = {}


class CommandAck(msgspec.Struct, frozen=True, kw_only=True):
    """A device's answer to a command: applied, or refused with a reason."""

    v: Version
    cmd_id: IdStr
    device_id: DeviceIdStr
    ts: TimestampMs
    ok: bool
    reason: ShortText = ""
    config_version: ConfigVersion = 0


TierName = Literal["none", "blue", "yellow", "orange", "red"]
"""An alert tier, lowest to highest; ``none`` is "no alert"."""
TIERS: Final[tuple[str, ...]] = ("none", "blue", "yellow", "orange", "red")
AlertCategory = Literal["overload", "overflow", "exceedance", "facility", "device"]
"""分类: 过载 overload, 溢流 overflow, 超标 exceedance, 设施不正常 facility, device health."""
AlertId = Annotated[str, msgspec.Meta(pattern=r"\A[0-9A-Za-z_.:-]{1,128}\Z")]
RuleName = Annotated[str, msgspec.Meta(pattern=r"\A[a-z][a-z0-9_.-]{0,63}\Z")]
DistrictStr = Annotated[str, msgspec.Meta(pattern=r"\A[a-z]{2,32}\Z")]


class Prediction(msgspec.Struct, frozen=True, kw_only=True):
    """What a predictive tier expects: ``metric`` reaches its limit in ``time_to_s`` seconds."""

    metric: MetricName
    time_to_s: Annotated[float, msgspec.Meta(ge=0.0)]
    horizon_s: Annotated[float, msgspec.Meta(ge=0.0)]
    rate_per_s: float | None = None


class AlertTransition(msgspec.Struct, frozen=True, kw_only=True):
    """An alert of one (device, rule) changing tier; published on ``xh/v1/_alert/...``.

    ``transition_id`` is stable (the same input gives the same id, so a replay after a crash
    re-emits duplicates that consumers drop); ``alert_id`` names the episode, from the moment it
    opened (``tier_from == "none"``) to the moment it cleared (``tier_to == "none"``).
    """

    v: int
    transition_id: AlertId
    alert_id: AlertId
    device_id: DeviceIdStr
    district: DistrictStr
    kind: Annotated[str, msgspec.Meta(pattern=r"\A[a-z]{2,32}\Z")]
    rule: RuleName
    category: AlertCategory
    tier_from: TierName
    tier_to: TierName
    value: float | None = None
    prediction: Prediction | None = None
    reason: ShortText = ""
    ts: TimestampMs
    flapping: bool = False
    incident_id: AlertId | None = None
    historical: bool = False
    notify: bool = True


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """Alerts on hydraulically connected nodes in one event, with a root cause.

    ``root_unit`` is the most downstream surcharged node of the connected set
    (``docs/alerting.md``);
    ``units`` are the modelled nodes affected, ``device_ids`` the devices alerting on them.
    """

    v: int
    id: AlertId
    district: DistrictStr
    root_unit: Annotated[str, msgspec.Meta(max_length=128)]
    root_device_id: DeviceIdStr | None = None
    units: tuple[str, ...]
    device_ids: tuple[str, ...]
    tier: TierName
    opened_ts: TimestampMs
    updated_ts: TimestampMs
    state: Literal["open", "closed"]
    category: AlertCategory


T = TypeVar("T", Telemetry, Event, Status, Command, CommandAck, AlertTransition, Incident)
Buffer = bytes | bytearray | memoryview
"""What paho hands over as a payload; msgspec decodes any of them without a copy."""

_DECODERS: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    Telemetry: msgspec.json.Decoder(Telemetry),
    Event: msgspec.json.Decoder(Event),
    Status: msgspec.json.Decoder(Status),
    Command: msgspec.json.Decoder(Command),
    CommandAck: msgspec.json.Decoder(CommandAck),
    AlertTransition: msgspec.json.Decoder(AlertTransition),
    Incident: msgspec.json.Decoder(Incident),
}
_ENCODER: Final = msgspec.json.Encoder()


class _TelemetryWire(msgspec.Struct, frozen=True, kw_only=True):
    """``Telemetry`` with its patterned strings unchecked, for the fast path of ``decode``."""

    v: Version
    device_id: str
    ts: TimestampMs
    seq: SeqNo
    boot_id: str
    readings: Annotated[dict[str, float], msgspec.Meta(min_length=1, max_length=64)]
    quality: QualityFlags | None = None
    historical: bool = False


_WIRE_DECODER: Final = msgspec.json.Decoder(_TelemetryWire)
_KNOWN_CAP: Final = 65_536


class _Known:
    """Strings already seen to match a pattern, so that a fleet's few thousand device ids and
    few dozen metric names are checked by a set look-up instead of a regular expression (ten of
    them per reading were a fifth of the alerting service's time). Emptied when full, so a
    stream of new strings costs no memory. A refused message is decoded twice (the fast way,
    then strictly for its reason): refusals cost about twice what they did, readings a third."""

    def __init__(self, annotated: Any) -> None:
        pattern = next(m.pattern for m in annotated.__metadata__ if m.pattern is not None)
        self._match = re.compile(pattern).search  # as msgspec applies it
        self._seen: set[str] = set()

    def all_valid(self, strings: Iterable[str]) -> bool:
        seen = self._seen
        for text in strings:
            if text not in seen:
                if self._match(text) is None:
                    return False
                if len(seen) >= _KNOWN_CAP:
                    seen.clear()
                seen.add(text)
        return True


_DEVICE_IDS: Final = _Known(DeviceIdStr)
_BOOT_IDS: Final = _Known(BootIdStr)
_METRIC_NAMES: Final = _Known(MetricName)


def _decode_telemetry(payload: Buffer) -> Telemetry:
    """``Telemetry`` the fast way: decoded with its patterned strings unchecked, then those
    checked against strings already seen to be valid. Anything else, or any failure, goes to
    the strict decoder, so what is accepted and every refusal and its message are the strict
    decoder's (``tests/unit/telemetry_core/test_fast_decode.py`` holds the two equal)."""
    try:
        wire = _WIRE_DECODER.decode(payload)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        wire = None
    if (
        wire is not None
        and _DEVICE_IDS.all_valid((wire.device_id,))
        and _BOOT_IDS.all_valid((wire.boot_id,))
        and _METRIC_NAMES.all_valid(wire.readings)
    ):
        return Telemetry(
            v=wire.v, device_id=wire.device_id, ts=wire.ts, seq=wire.seq,
            boot_id=wire.boot_id, readings=wire.readings, quality=wire.quality,
            historical=wire.historical,
        )  # fmt: skip
    result: Telemetry = _DECODERS[Telemetry].decode(payload)
    return result


def decode(payload: Buffer, kind: type[T], max_bytes: int = MAX_PAYLOAD_BYTES) -> T:
    """Decode and validate ``payload`` as ``kind``; every refusal is a ``RejectedMessage``."""
    if len(payload) > max_bytes:
        raise RejectedMessage(RejectReason.OVERSIZED, f"{len(payload)} bytes > {max_bytes}")
    try:
        msg: T = (
            _decode_telemetry(payload) if kind is Telemetry else _DECODERS[kind].decode(payload)
        )
    except msgspec.ValidationError as exc:
        text = str(exc)
        reason = RejectReason.NON_FINITE if "out of range" in text.lower() else RejectReason.SCHEMA
        raise RejectedMessage(reason, text) from exc
    except msgspec.DecodeError as exc:
        reason = _decode_error_reason(payload)
        raise RejectedMessage(reason, str(exc)) from exc
    except RecursionError as exc:
        # msgspec descends one C stack frame per nesting level, even inside ignored fields.
        raise RejectedMessage(RejectReason.MALFORMED_JSON, "JSON nested too deeply") from exc
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


def encode(
    message: Telemetry | Event | Status | Command | CommandAck | AlertTransition | Incident,
) -> bytes:
    """Encode a message as compact UTF-8 JSON."""
    return _ENCODER.encode(message)
