"""Device events and statuses as points: ``device_events`` and ``device_status``.

Events and statuses are rare next to telemetry, so they are built with the core's general
encoder rather than a pre-escaped head. Field types never change from point to point: numbers
are floats, flags booleans, text strings, ``seq`` and ``config_version`` integers. Control
characters in device text are made visible (``\\xNN``), as in the dead letter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from cloud_ingest._deadletter import printable
from telemetry_core.errors import LineProtocolError, RejectedMessage, RejectReason
from telemetry_core.kinds import MetricSpec
from telemetry_core.line_protocol import FieldValue, encode_point
from telemetry_core.registry import Device
from telemetry_core.schema import Event, Status

EVENTS_MEASUREMENT: Final = "device_events"
STATUS_MEASUREMENT: Final = "device_status"
_NS_PER_MS: Final = 1_000_000
_SEQ_NS: Final = 1_000_000
"""Events get ``seq mod 1e6`` extra nanoseconds: see :func:`event_time_ns`."""


def event_time_ns(ts_ms: int, seq: int) -> int:
    """The time of an event point: ``ts`` plus ``seq mod 1,000,000`` nanoseconds.

    Two events of one device in the same millisecond (two thresholds crossed by one sample)
    have the same tags but different ``seq``, so they get different times and do not
    overwrite each other; a redelivered copy has the same ``seq`` and still overwrites itself.
    """
    return ts_ms * _NS_PER_MS + seq % _SEQ_NS


def check_event_metric(msg: Event, metrics: Mapping[str, MetricSpec]) -> None:
    """Refuse an event about a metric its device's kind does not have (``unknown_metric``)."""
    if msg.metric is not None and msg.metric not in metrics:
        raise RejectedMessage(RejectReason.UNKNOWN_METRIC, f"event metric {msg.metric!r}")


def event_line(device: Device, msg: Event) -> str:
    """The ``device_events`` point of ``msg``; tags from the registry, never the payload."""
    tags = {"device_id": device.device_id, "district": device.district, "kind": device.kind.value,
            "type": msg.type, "severity": msg.severity.value}  # fmt: skip
    fields: dict[str, FieldValue] = {"message": printable(msg.message), "seq": msg.seq}
    if msg.value is not None:
        fields["value"] = _finite(float(msg.value), "value")
    if msg.metric is not None:
        fields["metric"] = msg.metric
    if msg.historical:
        fields["historical"] = True
    for key, item in msg.data.items():
        fields[f"data_{key}"] = _data_value(key, item)
    return _encode(EVENTS_MEASUREMENT, tags, fields, event_time_ns(msg.ts, msg.seq))


def status_line(device: Device, msg: Status) -> str:
    """The ``device_status`` point of a birth or last will, at the device's ``ts``."""
    tags = {"device_id": device.device_id, "district": device.district,
            "kind": device.kind.value, "state": msg.state}  # fmt: skip
    fields: dict[str, FieldValue] = {
        "firmware": printable(msg.firmware),
        "config_version": msg.config_version,
        "boot_id": msg.boot_id,
        "reason": printable(msg.reason),
    }
    return _encode(STATUS_MEASUREMENT, tags, fields, msg.ts * _NS_PER_MS)


def _data_value(key: str, item: float | int | str | bool) -> FieldValue:
    if isinstance(item, bool):
        return item
    if isinstance(item, str):
        return printable(item)
    try:
        number = float(item)  # ints too: a field keeps one type, whatever the JSON looked like
    except OverflowError as exc:
        raise RejectedMessage(RejectReason.NON_FINITE, f"data.{key} is beyond a double") from exc
    return _finite(number, f"data.{key}")


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise RejectedMessage(RejectReason.NON_FINITE, f"{where}={value!r}")
    return value


def _encode(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time_ns: int
) -> str:
    try:
        return encode_point(measurement, tags, fields, time_ns)
    except LineProtocolError as exc:
        # The schema's patterns keep names writable; this is the last line of defence.
        raise RejectedMessage(RejectReason.SCHEMA, str(exc)) from exc
