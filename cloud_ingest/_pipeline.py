"""The per-message path: topic, decode, validate, enrich from the registry, line protocol.

Everything here runs once per message, so the common case (telemetry) is kept to one dict
look-up for the topic, one msgspec decode, a loop over the readings and one f-string. Events
and statuses take a second look-up and the general encoder (``_events.py``); they pass the same
checks: known device, topic matching the registry and the payload, timestamp window. Every
refusal is a :class:`RejectedMessage` with its reason; the caller turns it into a dead-letter
record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from cloud_ingest._accounting import SeqTracker
from cloud_ingest._alerts import AlertMessages
from cloud_ingest._deadletter import printable
from cloud_ingest._events import check_event_metric, event_line, status_line
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.kinds import MetricSpec, kind_spec
from telemetry_core.line_protocol import encode_point, format_field_value
from telemetry_core.registry import Device, Registry
from telemetry_core.schema import Event, Quality, Status, Telemetry, decode
from telemetry_core.topics import Channel, Topic, parse_topic

RangePolicy = Literal["flag", "reject"]
_MS_PER_S: Final = 1000
_OUT_OF_RANGE: Final = format_field_value("q", Quality.OUT_OF_RANGE.value)
_GOOD: Final = Quality.GOOD.value
_INGESTED: Final = frozenset({Channel.TELEMETRY, Channel.EVENT, Channel.STATUS})


@dataclass(frozen=True, slots=True)
class Limits:
    """Validation policy: how far from now a timestamp may be, and what out-of-range means."""

    max_future_s: float = 300.0
    max_past_s: float = 7 * 86_400.0
    max_historical_past_s: float = 30 * 86_400.0
    range_policy: RangePolicy = "flag"
    max_payload_bytes: int = 16_384


@dataclass(frozen=True, slots=True)
class Profile:
    """What the pipeline needs of one registry device, computed once at start-up."""

    device: Device
    prefix: str
    """``kind,device_id=...,district=...``: the escaped head of every line of this device."""
    metrics: Mapping[str, MetricSpec]


def build_profile(device: Device) -> Profile:
    """The profile of ``device``: its line-protocol head and its kind's metrics."""
    tags = {"device_id": device.device_id, "district": device.district}
    head = encode_point(device.kind.value, tags, {"x": 0.0}).split(" ", 1)[0]
    return Profile(device=device, prefix=head, metrics=kind_spec(device.kind).metrics)


class Accepted(NamedTuple):
    """A valid message: its line (ns timestamps) and what accounting needs.

    ``ts_ms`` is the device's timestamp, for the latency of telemetry and events; for a status
    it is the receive time (a retained birth may be weeks old and says nothing about latency).

    A NamedTuple built with ``tuple.__new__``: a frozen dataclass's ``__init__`` costs about
    a microsecond per message here.
    """

    line: str
    device_id: str
    ts_ms: int
    duplicate: bool


_new_accepted = tuple.__new__


class Pipeline:
    """Turns ``(topic, payload)`` into a line of line protocol or a ``RejectedMessage``."""

    def __init__(self, registry: Registry, limits: Limits, tracker: SeqTracker) -> None:
        self._limits = limits
        self._tracker = tracker
        self._profiles = {d.device_id: build_profile(d) for d in registry}
        self._districts = frozenset(d.district for d in registry)
        # Valid topics only, so the caches are bounded by the fleet size (x 3 channels).
        self._routes: dict[str, Profile] = {}
        self._side_routes: dict[str, tuple[Channel, Profile]] = {}
        self._future_ms = int(limits.max_future_s * _MS_PER_S)
        self._past_ms = int(limits.max_past_s * _MS_PER_S)
        self._historical_ms = int(limits.max_historical_past_s * _MS_PER_S)
        self._max_payload_bytes = limits.max_payload_bytes
        self._alerts = AlertMessages(registry, limits.max_payload_bytes)

    @property
    def profiles(self) -> Mapping[str, Profile]:
        """Registry devices by id, as the pipeline sees them."""
        return self._profiles

    @property
    def tracker(self) -> SeqTracker:
        """The per-device counters this pipeline updates."""
        return self._tracker

    def process(self, topic: str, payload: bytes, now_ms: int) -> Accepted:
        """Validate one message and build its line; raise ``RejectedMessage`` to refuse it."""
        profile = self._routes.get(topic)
        if profile is None:
            if AlertMessages.handles(topic):  # the rule engine's output (_alerts.py)
                line, device_id, ts_ms = self._alerts.process(topic, payload)
                return _new_accepted(Accepted, (line, device_id or "", ts_ms, False))
            channel, profile = self._route(topic)
            if channel is not Channel.TELEMETRY:
                return self._process_side(channel, profile, payload, now_ms)
        device_id = profile.device.device_id
        try:
            msg = decode(payload, Telemetry, self._max_payload_bytes)
            if msg.device_id != device_id:
                raise self._spoofed(msg.device_id, device_id)
            self._check_time(msg, now_ms)
            fields = self._fields(msg, profile.metrics)
        except RejectedMessage:
            self._tracker.reject(device_id)
            raise
        duplicate = self._tracker.observe(device_id, msg.boot_id, msg.seq)
        line = f"{profile.prefix} {fields} {msg.ts}000000"
        return _new_accepted(Accepted, (line, device_id, msg.ts, duplicate))

    def topic_tags(self, topic: str) -> tuple[str | None, str | None, str | None]:
        """``(district, kind, device_id)`` of a reject, from a topic that parses.

        The district is kept only if the fleet has it, so hostile topics cannot mint series.
        """
        try:
            parsed = parse_topic(topic)
        except RejectedMessage:
            return None, None, None
        district = parsed.district if parsed.district in self._districts else None
        return district, parsed.kind.value, parsed.device_id

    def _process_side(
        self, channel: Channel, profile: Profile, payload: bytes, now_ms: int
    ) -> Accepted:
        """An event or a status: same checks as telemetry, its own measurement."""
        device = profile.device
        try:
            if channel is Channel.EVENT:
                event = decode(payload, Event, self._max_payload_bytes)
                self._check_sender(event.device_id, device.device_id)
                self._check_time(event, now_ms)
                check_event_metric(event, profile.metrics)
                line = event_line(device, event)
            else:
                status = decode(payload, Status, self._max_payload_bytes)
                self._check_sender(status.device_id, device.device_id)
                self._check_ts(status.ts, self._historical_ms, now_ms)
                line = status_line(device, status)
        except RejectedMessage:
            self._tracker.reject(device.device_id)
            raise
        if channel is not Channel.EVENT:
            return _new_accepted(Accepted, (line, device.device_id, now_ms, False))
        # Events share the device's sequence numbers with telemetry: leaving them out of the
        # accounting would count each one as a gap.
        duplicate = self._tracker.observe(device.device_id, event.boot_id, event.seq)
        return _new_accepted(Accepted, (line, device.device_id, event.ts, duplicate))

    def _route(self, topic: str) -> tuple[Channel, Profile]:
        side = self._side_routes.get(topic)
        if side is not None:
            return side
        parsed: Topic = parse_topic(topic)
        if parsed.channel not in _INGESTED:
            raise RejectedMessage(
                RejectReason.BAD_TOPIC, f"{topic!r}: channel {parsed.channel.value} is not ingested"
            )
        profile = self._profiles.get(parsed.device_id)
        if profile is None:
            raise RejectedMessage(
                RejectReason.UNKNOWN_DEVICE, f"{parsed.device_id!r} is not in the registry"
            )
        device = profile.device
        if (parsed.district, parsed.kind) != (device.district, device.kind):
            self._tracker.reject(device.device_id)
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"topic says {parsed.district}/{parsed.kind.value}, registry says"
                f" {device.district}/{device.kind.value}",
            )
        if parsed.channel is Channel.TELEMETRY:
            self._routes[topic] = profile
        else:
            self._side_routes[topic] = (parsed.channel, profile)
        return parsed.channel, profile

    @staticmethod
    def _spoofed(payload_device_id: str, device_id: str) -> RejectedMessage:
        # A device may not speak for another: the topic names who may publish there.
        return RejectedMessage(
            RejectReason.TOPIC_MISMATCH,
            f"payload device_id {payload_device_id!r} on the topic of {device_id!r}",
        )

    def _check_sender(self, payload_device_id: str, device_id: str) -> None:
        if payload_device_id != device_id:
            raise self._spoofed(payload_device_id, device_id)

    def _check_time(self, msg: Telemetry | Event, now_ms: int) -> None:
        ts = msg.ts
        allowed = self._historical_ms if msg.historical else self._past_ms
        # One comparison pair on the hot path; _check_ts says which bound was crossed.
        if ts - now_ms > self._future_ms or now_ms - ts > allowed:
            self._check_ts(ts, allowed, now_ms)

    def _check_ts(self, ts: int, allowed_past_ms: int, now_ms: int) -> None:
        if ts - now_ms > self._future_ms:
            raise RejectedMessage(
                RejectReason.TS_FUTURE, f"ts {ts} is {(ts - now_ms) / 1000:.0f} s ahead"
            )
        if now_ms - ts > allowed_past_ms:
            raise RejectedMessage(
                RejectReason.TS_PAST, f"ts {ts} is {(now_ms - ts) / 1000:.0f} s old"
            )

    def _fields(self, msg: Telemetry, metrics: Mapping[str, MetricSpec]) -> str:
        parts: list[str] = []
        flagged: dict[str, str] = {}
        for name, value in msg.readings.items():
            spec = metrics.get(name)
            if spec is None:
                raise RejectedMessage(RejectReason.UNKNOWN_METRIC, f"{name!r} is not a metric")
            if not spec.low <= value <= spec.high:
                self._out_of_range(name, value, spec, flagged)
            parts.append(f"{name}={value!r}")
        parts.append(f"seq={msg.seq}i")
        if msg.quality:
            self._quality(msg.quality, metrics, flagged)
        if flagged:
            parts.extend([f"{name}__q={flag}" for name, flag in flagged.items()])
        if msg.historical:
            parts.append("historical=true")
        return ",".join(parts)

    def _out_of_range(
        self, name: str, value: float, spec: MetricSpec, flagged: dict[str, str]
    ) -> None:
        if not math.isfinite(value):
            raise RejectedMessage(RejectReason.NON_FINITE, f"{name}={value!r}")
        if self._limits.range_policy == "reject":
            raise RejectedMessage(
                RejectReason.OUT_OF_RANGE, f"{name}={value!r} outside [{spec.low}, {spec.high}]"
            )
        flagged[name] = _OUT_OF_RANGE

    @staticmethod
    def _quality(
        quality: Mapping[str, str], metrics: Mapping[str, MetricSpec], flagged: dict[str, str]
    ) -> None:
        for name, flag in quality.items():
            if name not in metrics:
                raise RejectedMessage(RejectReason.UNKNOWN_METRIC, f"quality of {name!r}")
            # The ingester's own out_of_range verdict wins over the device's opinion.
            if flag != _GOOD and name not in flagged:
                # Device text: control characters made visible, as in events and dead letters.
                flagged[name] = format_field_value(name, printable(flag))
