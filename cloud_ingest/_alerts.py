"""The alerting service's messages as points: transitions, incidents, stats, dead letters.

The rule engine publishes on MQTT and never writes to InfluxDB: the ingester stays the one
writer, with one delivery guarantee. Topics, outside the device topics:

=====================================  ===============  ===============================
topic                                  payload          measurement(s)
=====================================  ===============  ===============================
``xh/v1/_alert/{district}/{device}``   AlertTransition  ``alert_events``, ``alert_state``
``xh/v1/_incident/{district}/{id}``    Incident         ``alert_incidents``
``xh/v1/_alerting/{instance}/stats``   AlertingStats    ``alerting_stats``
``xh/v1/_deadletter/alerting``         dead letter      ``alerting_rejects``
=====================================  ===============  ===============================

**Idempotent by key.** After a crash the engine re-emits the same transitions with the same
``transition_id``; the point of a transition is keyed by its tags and a time derived from its
reading's time and its id (``ts`` ms plus ``crc32(transition_id) mod 10**6`` ns), so a
re-emitted copy overwrites itself and two transitions of one reading stay apart.
``alert_state`` (the tier of each device and rule, for the map) is keyed by the reading's time
only: the last transition of a reading wins, and ``last()`` gives the current tier.

Tags come from the registry-checked topic and the message's bounded enums (tier, category,
rule name), so a publisher cannot mint unbounded series.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar

import msgspec

from cloud_ingest._deadletter import printable
from cloud_ingest._events import _encode
from telemetry_core.alerting_wire import (
    ALERTING_DEADLETTER_TOPIC,
    ALERTING_PREFIX,
    ALERTING_STATS_FILTER,
    AlertingDeadLetter,
    AlertingStats,
)
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.line_protocol import FieldValue
from telemetry_core.registry import Registry
from telemetry_core.schema import AlertTransition, Incident, decode
from telemetry_core.topics import (
    ALERT_PREFIX,
    INCIDENT_PREFIX,
    alert_subscription,
    incident_subscription,
)

ALERT_EVENTS_MEASUREMENT: Final = "alert_events"
ALERT_STATE_MEASUREMENT: Final = "alert_state"
INCIDENTS_MEASUREMENT: Final = "alert_incidents"
ALERTING_STATS_MEASUREMENT: Final = "alerting_stats"
ALERTING_REJECTS_MEASUREMENT: Final = "alerting_rejects"
TIER_RANK: Final = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
_NS_PER_MS: Final = 1_000_000
_MAX_LISTED: Final = 64
"""Units and devices of an incident stored in its point (all are counted)."""

Stored = tuple[str, str | None, int]
"""``(lines, device_id, ts_ms)``: the point(s) of one message, who it is about, its time."""


def alert_filters(districts: Sequence[str] = (), share_group: str | None = None) -> list[str]:
    """What an ingester subscribes to for the alerting service's messages.

    Transitions and incidents of its districts (every district when empty), and every
    instance's stats and dead letters: each ingester instance stores those, and their points
    are keyed so that two instances storing the same message write one point.
    """
    owned = [alert_subscription(d) for d in districts] or [alert_subscription()]
    owned += [incident_subscription(d) for d in districts] or [incident_subscription()]
    filters = [*owned, ALERTING_STATS_FILTER, ALERTING_DEADLETTER_TOPIC]
    return [f"$share/{share_group}/{f}" for f in filters] if share_group else filters


def offset_ns(key: str) -> int:
    """A stable sub-millisecond offset for ``key``: ``crc32(key) mod 10**6`` nanoseconds."""
    return zlib.crc32(key.encode("utf-8")) % _NS_PER_MS


class AlertMessages:
    """Turns the alerting service's messages into points; ``RejectedMessage`` to refuse one."""

    def __init__(self, registry: Registry, max_payload_bytes: int) -> None:
        self._registry = registry
        self._districts = frozenset(d.district for d in registry)
        self._max_bytes = max_payload_bytes
        self._routes: Mapping[str, Callable[[list[str], bytes], Stored]] = {
            ALERT_PREFIX: self._transition,
            INCIDENT_PREFIX: self._incident,
            ALERTING_PREFIX: self._stats,
        }

    @staticmethod
    def handles(topic: str) -> bool:
        """Whether ``topic`` is one of the alerting service's (the pipeline's branch test)."""
        return topic.startswith((ALERT_PREFIX, INCIDENT_PREFIX, ALERTING_PREFIX)) or (
            topic == ALERTING_DEADLETTER_TOPIC
        )

    def process(self, topic: str, payload: bytes) -> Stored:
        """The point(s) of one message on an alerting topic."""
        if topic == ALERTING_DEADLETTER_TOPIC:
            return self._dead_letter(payload)
        parts = topic.split("/")
        route = self._routes.get("/".join(parts[:3])) if len(parts) == 5 else None
        if route is None:
            raise RejectedMessage(RejectReason.BAD_TOPIC, f"{topic!r}: not an alerting topic")
        return route(parts, payload)

    def _transition(self, parts: list[str], payload: bytes) -> Stored:
        msg = decode(payload, AlertTransition, self._max_bytes)
        self._check_device(parts[3], parts[4], msg)
        tags = {"device_id": msg.device_id, "district": msg.district, "kind": msg.kind,
                "rule": msg.rule, "category": msg.category, "tier_to": msg.tier_to}  # fmt: skip
        fields = _transition_fields(msg)
        time_ns = msg.ts * _NS_PER_MS + offset_ns(msg.transition_id)
        event = _encode(ALERT_EVENTS_MEASUREMENT, tags, fields, time_ns)
        state_tags = {k: tags[k] for k in ("device_id", "district", "kind", "rule")}
        state_fields: dict[str, FieldValue] = {
            "tier": msg.tier_to, "tier_rank": TIER_RANK[msg.tier_to],
            "alert_id": msg.alert_id, "flapping": msg.flapping,
        }  # fmt: skip
        state = _encode(ALERT_STATE_MEASUREMENT, state_tags, state_fields, msg.ts * _NS_PER_MS)
        return f"{event}\n{state}", msg.device_id, msg.ts

    def _check_device(self, district: str, device_id: str, msg: AlertTransition) -> None:
        device = self._registry.get(device_id)
        if device is None:
            raise RejectedMessage(
                RejectReason.UNKNOWN_DEVICE, f"{device_id!r} is not in the registry"
            )
        topic_says = (district, device_id)
        if topic_says != (msg.district, msg.device_id):
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"transition of {msg.district}/{msg.device_id} on the topic of"
                f" {district}/{device_id}",
            )
        if (device.district, device.kind.value) != (msg.district, msg.kind):
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"transition says {msg.district}/{msg.kind}, registry says"
                f" {device.district}/{device.kind.value}",
            )

    def _incident(self, parts: list[str], payload: bytes) -> Stored:
        msg = decode(payload, Incident, self._max_bytes)
        if (parts[3], parts[4]) != (msg.district, msg.id) or msg.district not in self._districts:
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"incident {msg.district}/{msg.id} on the topic of {parts[3]}/{parts[4]}",
            )
        tags = {"district": msg.district, "category": msg.category, "state": msg.state}
        fields: dict[str, FieldValue] = {
            "incident_id": msg.id, "root_unit": printable(msg.root_unit),
            "root_device_id": msg.root_device_id or "", "tier": msg.tier,
            "tier_rank": TIER_RANK[msg.tier], "opened_ts": msg.opened_ts,
            "units": printable(",".join(msg.units[:_MAX_LISTED])), "unit_count": len(msg.units),
            "device_ids": ",".join(msg.device_ids[:_MAX_LISTED]),
            "device_count": len(msg.device_ids),
        }  # fmt: skip
        time_ns = msg.updated_ts * _NS_PER_MS + offset_ns(msg.id)
        return _encode(INCIDENTS_MEASUREMENT, tags, fields, time_ns), None, msg.updated_ts

    def _stats(self, parts: list[str], payload: bytes) -> Stored:
        msg = decode_stats(payload, self._max_bytes)
        if parts[3] != msg.instance or parts[4] != "stats":
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH, f"stats of {msg.instance!r} on {'/'.join(parts)!r}"
            )
        fields: dict[str, FieldValue] = {
            name: getattr(msg, name) for name in AlertingStats.__struct_fields__
            if name not in ("v", "instance", "ts")
        }  # fmt: skip
        tags = {"instance": msg.instance}
        return _encode(ALERTING_STATS_MEASUREMENT, tags, fields, msg.ts * _NS_PER_MS), None, msg.ts

    def _dead_letter(self, payload: bytes) -> Stored:
        msg = decode_dead_letter(payload, self._max_bytes)
        tags = {"reason": msg.reason, "instance": msg.instance}
        fields: dict[str, FieldValue] = {
            "topic": printable(msg.topic), "payload": printable(msg.payload),
            "detail": printable(msg.detail), "device_id": printable(msg.device_id or ""),
        }  # fmt: skip
        time_ns = msg.received_ms * _NS_PER_MS + offset_ns(msg.topic + msg.payload)
        line = _encode(ALERTING_REJECTS_MEASUREMENT, tags, fields, time_ns)
        return line, None, msg.received_ms


def _transition_fields(msg: AlertTransition) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {
        "transition_id": msg.transition_id, "alert_id": msg.alert_id,
        "tier_from": msg.tier_from, "tier_rank": TIER_RANK[msg.tier_to],
        "reason": printable(msg.reason), "flapping": msg.flapping,
        "historical": msg.historical, "notify": msg.notify,
    }  # fmt: skip
    if msg.value is not None:
        fields["value"] = _finite(msg.value, "value")
    if msg.incident_id is not None:
        fields["incident_id"] = msg.incident_id
    prediction = msg.prediction
    if prediction is not None:
        fields["prediction_metric"] = prediction.metric
        fields["prediction_time_to_s"] = _finite(prediction.time_to_s, "prediction.time_to_s")
        fields["prediction_horizon_s"] = _finite(prediction.horizon_s, "prediction.horizon_s")
        if prediction.rate_per_s is not None:
            fields["prediction_rate_per_s"] = _finite(prediction.rate_per_s, "prediction.rate")
    return fields


def _finite(value: float, where: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise RejectedMessage(RejectReason.NON_FINITE, f"{where}={value!r}")
    return number


def decode_stats(payload: bytes, max_bytes: int) -> AlertingStats:
    """Decode an ``alerting_stats`` message (``RejectedMessage`` as for device messages)."""
    return _decode_struct(payload, AlertingStats, max_bytes)


def decode_dead_letter(payload: bytes, max_bytes: int) -> AlertingDeadLetter:
    """Decode an alerting dead letter."""
    return _decode_struct(payload, AlertingDeadLetter, max_bytes)


_S = TypeVar("_S", AlertingStats, AlertingDeadLetter)


def _decode_struct(payload: bytes, kind: type[_S], max_bytes: int) -> _S:
    if len(payload) > max_bytes:
        raise RejectedMessage(RejectReason.OVERSIZED, f"{len(payload)} bytes > {max_bytes}")
    try:
        msg = msgspec.json.decode(payload, type=kind)
    except msgspec.ValidationError as exc:
        raise RejectedMessage(RejectReason.SCHEMA, str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise RejectedMessage(RejectReason.MALFORMED_JSON, str(exc)) from exc
    if isinstance(msg, AlertingStats) and msg.v != 1:
        raise RejectedMessage(RejectReason.UNSUPPORTED_VERSION, f"v={msg.v}, want 1")
    return msg
