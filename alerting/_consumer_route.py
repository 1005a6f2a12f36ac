"""From ``(topic, payload)`` to an engine call: parse, decode, check, evaluate.

Every check the ingester makes on the way in is made here too, because this consumer reads the
same untrusted topics: a known device of this instance's partition, a topic that matches the
registry, a payload that speaks for the device of its topic, and no timestamp far in the future
(a reading from next year would freeze the device's event time). A refusal is a
:class:`RejectedMessage` with its reason; the service dead-letters it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from alerting._hygiene import Silence
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Registry
from telemetry_core.schema import AlertTransition, Event, Incident, Status, Telemetry, decode
from telemetry_core.topics import Channel, Topic, parse_topic

if TYPE_CHECKING:
    from alerting._forecast import ForecastCounts
    from alerting._state import StateDelta

_MS_PER_S: Final = 1000
_ROUTE_CACHE_MAX: Final = 200_000
"""Valid topics only are cached, so the cache is bounded by the fleet anyway; this is a fuse."""


class Engine(Protocol):
    """The engine as the service drives it (``alerting.Engine``)."""

    silences: list[Silence]
    """The maintenance silences it applies (the service swaps in what the store holds)."""

    late_readings: int
    """Readings it let go unevaluated, not after their device's newest one."""

    def on_telemetry(self, topic: Topic, msg: Telemetry) -> Sequence[AlertTransition]:
        """Evaluate a reading; the transitions it caused."""
        ...

    def close(self) -> None:
        """Release what the engine runs beside it (the forecast's SWMM worker)."""
        ...

    def forecast_counts(self) -> ForecastCounts | None:
        """What the forecast did so far; ``None`` without a forecast."""
        ...

    def on_event(self, topic: Topic, msg: Event) -> Sequence[AlertTransition]:
        """Take a device event; the transitions it caused."""
        ...

    def on_status(self, topic: Topic, msg: Status) -> Sequence[AlertTransition]:
        """Take a birth or last will; the transitions it caused."""
        ...

    def tick(self, now_s: float) -> Sequence[AlertTransition]:
        """Advance wall time (silent devices, silences that expire); the transitions."""
        ...

    def incidents_changed(self) -> Sequence[Incident]:
        """Incidents opened, updated or closed since the last call."""
        ...

    def slide_flapping(self, ts_ms: int, historical: bool) -> Sequence[AlertTransition]:
        """Slide flapping windows if event time ``ts_ms`` entered a new minute; the releases."""
        ...

    def delta(self) -> StateDelta:
        """The state changed since the last checkpoint, to checkpoint."""
        ...

    def encode_pending(self, limit: int, keep: int = 0) -> int:
        """Encode up to ``limit`` changed devices ahead of ``delta``, leaving ``keep``; how
        many remain."""
        ...

    @property
    def state_bytes(self) -> int:
        """The size of the whole state as stored."""
        ...


class Router:
    """Refuses what is not ours or not valid, and hands the rest to the engine."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        districts: Collection[str],
        *,
        max_payload_bytes: int,
        max_future_s: float,
        shared_kinds: Collection[DeviceKind] = (),
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._districts = frozenset(districts)
        self._shared_kinds = frozenset(shared_kinds)
        self._max_payload_bytes = max_payload_bytes
        self._future_ms = int(max_future_s * _MS_PER_S)
        self._topics: dict[str, Topic] = {}
        self.last_ts_ms = 0
        """Event time of the last live (not historical) reading evaluated, for the lag."""

    @property
    def engine(self) -> Engine:
        """The engine this router feeds."""
        return self._engine

    def handle(self, topic: str, payload: bytes, now_ms: int) -> Sequence[AlertTransition]:
        """Evaluate one message; its transitions, or ``RejectedMessage`` naming the reason."""
        parsed = self._topics.get(topic) or self._route(topic)
        channel = parsed.channel
        if channel is Channel.TELEMETRY:
            msg = decode(payload, Telemetry, self._max_payload_bytes)
            self._check(parsed, msg.device_id, msg.ts, now_ms)
            if not msg.historical:
                self.last_ts_ms = msg.ts
            released = self._engine.slide_flapping(msg.ts, msg.historical)
            out = self._engine.on_telemetry(parsed, msg)
            return [*released, *out] if released else out
        if channel is Channel.EVENT:
            event = decode(payload, Event, self._max_payload_bytes)
            self._check(parsed, event.device_id, event.ts, now_ms)
            released = self._engine.slide_flapping(event.ts, event.historical)
            out = self._engine.on_event(parsed, event)
            return [*released, *out] if released else out
        status = decode(payload, Status, self._max_payload_bytes)
        self._check(parsed, status.device_id, status.ts, now_ms)
        return self._engine.on_status(parsed, status)

    def district_of(self, topic: str) -> str | None:
        """The district of a valid topic of ours, for tagging a dead letter; else None."""
        parsed = self._topics.get(topic)
        return parsed.district if parsed is not None else None

    def _route(self, topic: str) -> Topic:
        parsed = parse_topic(topic)
        if parsed.channel not in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS):
            raise RejectedMessage(
                RejectReason.BAD_TOPIC, f"{topic!r}: channel {parsed.channel.value} is not read"
            )
        shared = parsed.kind in self._shared_kinds and parsed.channel is Channel.TELEMETRY
        if self._districts and parsed.district not in self._districts and not shared:
            raise RejectedMessage(
                RejectReason.BAD_TOPIC,
                f"{topic!r}: district {parsed.district} is not in this instance's partition",
            )
        device = self._registry.get(parsed.device_id)
        if device is None:
            raise RejectedMessage(
                RejectReason.UNKNOWN_DEVICE, f"{parsed.device_id!r} is not in the registry"
            )
        if (parsed.district, parsed.kind) != (device.district, device.kind):
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"topic says {parsed.district}/{parsed.kind.value}, registry says"
                f" {device.district}/{device.kind.value}",
            )
        if len(self._topics) < _ROUTE_CACHE_MAX:
            self._topics[topic] = parsed
        return parsed

    def _check(self, topic: Topic, payload_device_id: str, ts_ms: int, now_ms: int) -> None:
        if payload_device_id != topic.device_id:
            raise RejectedMessage(
                RejectReason.TOPIC_MISMATCH,
                f"payload device_id {payload_device_id!r} on the topic of {topic.device_id!r}",
            )
        if ts_ms - now_ms > self._future_ms:
            raise RejectedMessage(
                RejectReason.TS_FUTURE, f"ts {ts_ms} is {(ts_ms - now_ms) / 1000:.0f} s ahead"
            )
