"""Backtests: history replayed through the same engine code as the live service.

History comes from a simulator run's output directory (``readings.jsonl``, ``events.jsonl``)
or from InfluxDB (InfluxQL, one time window at a time, so memory stays bounded). Messages are
put in event-time order (a small reorder buffer absorbs devices' clock skew) and fed to one or
more engines side by side (the rules under test and a baseline, in the same pass); the engines
are ticked on event time, as the live service ticks them on wall time, so silent devices and
reminders behave as they would have.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from alerting._engine import Engine
from alerting._rules import RuleSet
from alerting.errors import SimDirError
from telemetry_core.registry import Registry
from telemetry_core.schema import TIERS, AlertTransition, Event, Status, Telemetry
from telemetry_core.topics import Channel, Topic

Message = Telemetry | Event | Status
Item = tuple[int, Topic, Message]
"""``(event time in ms, topic, message)``."""

TICK_S: Final = 60.0
REORDER_SLACK_MS: Final = 300_000
"""How far out of order (by device clock skew) messages of a file or window may be."""


@dataclass(frozen=True, slots=True)
class RuleSummary:
    """What one rule did over the replay."""

    rule: str
    alerts: int
    """Alert episodes opened (a transition from ``none``)."""
    transitions: int
    flaps: int
    """Alerts that were marked flapping at least once."""
    highest: str
    notified: int


@dataclass(frozen=True, slots=True)
class Replay:
    """The transitions of each engine, and how much was replayed."""

    transitions: tuple[tuple[AlertTransition, ...], ...]
    messages: int
    first_ts_ms: int | None
    last_ts_ms: int | None
    wall_s: float


def summarize(transitions: Iterable[AlertTransition], rules: RuleSet) -> list[RuleSummary]:
    """Per rule of ``rules`` (in their order): alerts raised, transitions, flaps, highest tier."""
    by_rule: dict[str, list[AlertTransition]] = {r.name: [] for r in rules.rules}
    for t in transitions:
        by_rule.setdefault(t.rule, []).append(t)
    return [_summary(name, items) for name, items in by_rule.items()]


def _summary(rule: str, items: list[AlertTransition]) -> RuleSummary:
    top = max((TIERS.index(t.tier_to) for t in items), default=0)
    return RuleSummary(
        rule=rule,
        alerts=sum(1 for t in items if t.tier_from == "none" and t.tier_to != "none"),
        transitions=len(items),
        flaps=len({t.alert_id for t in items if t.flapping}),
        highest=TIERS[top],
        notified=sum(1 for t in items if t.notify),
    )


def replay(engines: Sequence[Engine], items: Iterable[Item], *, tick_s: float = TICK_S) -> Replay:
    """Feed ``items`` (in event-time order) to every engine, ticking them on event time."""
    started = time.monotonic()
    outs: list[list[AlertTransition]] = [[] for _ in engines]
    tick_ms = int(tick_s * 1000)
    next_tick: int | None = None
    first = last = None
    count = 0
    for ts, topic, msg in items:
        if isinstance(msg, Status):
            pass  # a retained status may be weeks old: it does not move event time
        elif next_tick is None:
            first, next_tick = ts, (ts // tick_ms + 1) * tick_ms
        elif ts >= next_tick:
            # Every minute crossed, as the live service's wall-time ticks would have.
            while ts >= next_tick:
                _tick(engines, outs, next_tick)
                next_tick += tick_ms
        for engine, out in zip(engines, outs, strict=True):
            out.extend(_feed(engine, topic, msg))
        last = ts
        count += 1
    if next_tick is not None:
        _tick(engines, outs, next_tick)
    wall_s = time.monotonic() - started
    return Replay(tuple(tuple(o) for o in outs), count, first, last, wall_s)


def _tick(engines: Sequence[Engine], outs: list[list[AlertTransition]], at_ms: int) -> None:
    for engine, out in zip(engines, outs, strict=True):
        out.extend(engine.tick(at_ms / 1000))
        out.extend(engine.refresh_flapping(at_ms / 1000))


def _feed(engine: Engine, topic: Topic, msg: Message) -> list[AlertTransition]:
    if isinstance(msg, Telemetry):
        return engine.on_telemetry(topic, msg)
    if isinstance(msg, Event):
        return engine.on_event(topic, msg)
    return engine.on_status(topic, msg)


def reorder(items: Iterable[Item], slack_ms: int = REORDER_SLACK_MS) -> Iterator[Item]:
    """``items`` in event-time order, given that none is more than ``slack_ms`` out of place."""
    heap: list[tuple[int, int, Item]] = []
    counter = itertools.count()  # ties keep their input order
    newest = None
    for item in items:
        heapq.heappush(heap, (item[0], next(counter), item))
        newest = item[0] if newest is None else max(newest, item[0])
        while heap and heap[0][0] < newest - slack_ms:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


# -- a simulator run's output directory ------------------------------------------------------


def sim_dir_items(
    directory: Path, registry: Registry, from_ms: int | None = None, to_ms: int | None = None
) -> Iterator[Item]:
    """The readings and events of ``directory`` in event-time order, within ``[from, to)``."""
    readings = directory / "readings.jsonl"
    if not readings.is_file():
        raise SimDirError(f"{directory}: no readings.jsonl (is it a `xiuhua sim run --out` dir?)")
    sources = [_jsonl(readings, Telemetry, registry)]
    events = directory / "events.jsonl"
    if events.is_file():
        sources.append(_jsonl(events, Event, registry))
    merged = heapq.merge(*(reorder(s) for s in sources), key=lambda item: item[0])
    for item in merged:
        if (from_ms is None or item[0] >= from_ms) and (to_ms is None or item[0] < to_ms):
            yield item


def _jsonl(path: Path, kind: type[Telemetry] | type[Event], registry: Registry) -> Iterator[Item]:
    decoder = msgspec.json.Decoder(kind)
    channel = Channel.TELEMETRY if kind is Telemetry else Channel.EVENT
    topics: dict[str, Topic] = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                msg = decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise SimDirError(f"{path}:{number}: {exc}") from exc
            topic = topics.get(msg.device_id) or _topic(registry, msg.device_id, channel)
            if topic is None:
                continue  # not in the fleet given: not ours to evaluate
            topics[msg.device_id] = topic
            yield msg.ts, topic, msg


def _topic(registry: Registry, device_id: str, channel: Channel) -> Topic | None:
    device = registry.get(device_id)
    if device is None:
        return None
    return Topic(device.district, device.kind, device.device_id, channel)
