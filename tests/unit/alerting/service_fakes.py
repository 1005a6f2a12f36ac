"""Test doubles for the alerting service's unit tests: an engine, a source, a store.

The engine double is a one-rule threshold engine on ``level_m`` (red at >= 2.0, clear below
1.0) that ignores a reading not newer than the device's last, as the real engine does; it is
enough to drive the service's plumbing and is never used outside tests.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from alerting import ForecastCounts
from alerting._consumer import PublishLedger
from alerting._hygiene import Silence
from alerting._state import StateDelta
from alerting.errors import StoreError
from telemetry_core.schema import AlertTransition, Event, Incident, Status, Telemetry, TierName
from telemetry_core.topics import Topic

NOW_MS = 1_764_000_000_000


def _id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


class ThresholdEngine:
    """One rule, ``level``: red at ``level_m >= 2.0``, back to none below ``1.0``."""

    def __init__(self, state: dict[str, list[object]] | None = None) -> None:
        self.state: dict[str, list[object]] = state or {}  # device -> [tier, last_ts, opened_ts]
        self.ticks: list[float] = []
        self.slides: list[tuple[int, bool]] = []
        self.explode_on: str | None = None
        self.silences: list[Silence] = []
        self.forecast: ForecastCounts | None = None
        self.late_readings = 0
        self.encoded_ahead: list[tuple[int, int]] = []

    def on_telemetry(self, topic: Topic, msg: Telemetry) -> list[AlertTransition]:
        if self.explode_on is not None and msg.device_id == self.explode_on:
            raise ZeroDivisionError("the engine tripped")
        tier, last_ts, opened = self.state.get(msg.device_id, ["none", -1, 0])
        if msg.ts <= int(str(last_ts)):
            return []
        level = msg.readings.get("level_m", 0.0)
        old: TierName = tier  # type: ignore[assignment]
        new: TierName = "red" if level >= 2.0 else ("none" if level < 1.0 else old)
        opened = msg.ts if tier == "none" and new != "none" else opened
        self.state[msg.device_id] = [new, msg.ts, opened]
        if new == tier:
            return []
        return [
            AlertTransition(
                v=1, transition_id=_id(msg.device_id, msg.ts, new),
                alert_id=_id(msg.device_id, opened),
                device_id=msg.device_id, district=topic.district, kind=topic.kind.value,
                rule="level", category="overflow", tier_from=old, tier_to=new, value=level,
                ts=msg.ts, historical=msg.historical, notify=not msg.historical,
            )
        ]  # fmt: skip

    def on_event(self, _topic: Topic, _msg: Event) -> list[AlertTransition]:
        return []

    def on_status(self, _topic: Topic, _msg: Status) -> list[AlertTransition]:
        return []

    def tick(self, now_s: float) -> list[AlertTransition]:
        self.ticks.append(now_s)
        return []

    def close(self) -> None:
        self.closed = True

    def forecast_counts(self) -> ForecastCounts | None:
        return self.forecast

    def slide_flapping(self, ts_ms: int, historical: bool) -> list[AlertTransition]:
        self.slides.append((ts_ms, historical))
        return []

    def incidents_changed(self) -> list[Incident]:
        return []

    def delta(self) -> StateDelta:
        """The whole (tiny) state as one part, every time."""
        return StateDelta({"fake": msgspec.json.encode(self.state)}, full=True)

    def encode_pending(self, limit: int, keep: int = 0) -> int:
        self.encoded_ahead.append((limit, keep))
        return 0

    @property
    def state_bytes(self) -> int:
        return len(msgspec.json.encode(self.state))

    @classmethod
    def restore(cls, parts: dict[str, bytes] | None) -> ThresholdEngine:
        return cls(msgspec.json.decode(parts["fake"]) if parts else None)


@dataclass
class FakeMessage:
    """Looks like a received MQTT message."""

    topic: str
    payload: bytes
    mid: int
    qos: int = 1
    dup: bool = False


@dataclass
class FakeSource:
    """Records acks and publishes; ``auto_confirm`` makes the broker PUBACK at once."""

    inbox: collections.deque[object] = field(default_factory=collections.deque)
    wake: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    ledger: PublishLedger = field(default_factory=PublishLedger)
    acks: list[tuple[int, list[int]]] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)
    auto_confirm: bool = True
    _mids: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.subscribed.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        pass

    def ack_later(self, generation: int, mids: list[int]) -> None:
        self.acks.append((generation, mids))

    def publish_later(self, topic: str, payload: bytes) -> None:
        mid = len(self.published) + 1
        self.published.append((topic, payload))
        self.ledger.handed(mid)
        self._mids.append(mid)
        if self.auto_confirm:
            self.confirm_all()

    def confirm_all(self) -> None:
        while self._mids:
            self.ledger.acknowledged(self._mids.pop())

    @property
    def publishes_queued(self) -> int:
        return len(self.published)

    def acked_mids(self) -> list[int]:
        return [mid for _, mids in self.acks for mid in mids]


class MemoryStore:
    """A state store in memory; ``fail`` raises a transient error on the next writes,
    ``refuse`` names transition ids it refuses for good, ``broken`` makes every write fail
    for good."""

    name = "memory://test"

    def __init__(self) -> None:
        self.deltas: list[StateDelta] = []
        self.parts: dict[str, bytes] = {}
        self.transitions: list[AlertTransition] = []
        self.fail = 0
        self.refuse: set[str] = set()
        self.broken = False

    def checkpoint(
        self, delta: StateDelta, transitions: Sequence[AlertTransition]
    ) -> list[tuple[AlertTransition, str]]:
        if self.broken:
            raise StoreError(f"alert store {self.name}: the state cannot be written: bad data")
        if self.fail:
            self.fail -= 1
            raise StoreError("database is locked", retryable=True)
        if delta.full:
            self.parts.clear()
        for key in delta.deleted:
            self.parts.pop(key, None)
        self.parts.update(delta.parts)
        self.deltas.append(delta)
        refused = [(t, f"{self.name}: refused") for t in transitions
                   if t.transition_id in self.refuse]  # fmt: skip
        self.transitions.extend(t for t in transitions if t.transition_id not in self.refuse)
        return refused

    def load(self) -> dict[str, bytes] | None:
        return dict(self.parts) or None
