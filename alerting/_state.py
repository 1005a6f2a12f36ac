"""The engine's state as msgspec structs: small on the hot path, encoded a part at a time.

``-1`` stands for "not set" in the millisecond fields, so each struct stays a flat array.

A checkpoint is a :class:`StateDelta`: the **parts** of the state changed since the previous
one, each encoded on its own (msgpack) under a key, so the store upserts a row per part:

    m          MetaPart: start, watermark, the flapping minute, open incidents
    d:<device> DevicePart: the device's rule states, last-seen times, fit windows, status
    n:<node>   a node's latest values (for neighbour conditions)
    r:<gauge>  a rain gauge's recent intensities

:func:`alerting._snapshot.assemble` puts the stored parts back together into one
:class:`Snapshot`, the whole state, which is also what ``Engine.snapshot()`` encodes at once
(and what the store held in a single row before checkpoints became incremental).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

SNAPSHOT_VERSION = 1
UNSET = -1
META_KEY = "m"
DEVICE_PREFIX = "d:"
NODE_PREFIX = "n:"
RAIN_PREFIX = "r:"


class RuleState(msgspec.Struct, array_like=True, gc=False):
    """One (device, rule): the published tier, the per-tier latches and their clocks."""

    tier: int = 0
    latched: list[bool] = []
    since: list[int] = []
    counts: list[int] = []
    clear_since: list[int] = []
    latched_at: list[int] = []
    alert_id: str = ""
    opened_ms: int = UNSET
    changes: list[int] = []
    flapping: bool = False
    last_notify_ms: int = UNSET
    target: int = 0
    aux: list[float] = []
    last_ts: int = UNSET
    value: float | None = None
    reason: str = ""
    """Why the target last changed (absent from old blobs)."""

    @classmethod
    def fresh(cls, tiers: int) -> RuleState:
        """The state of a rule that has seen nothing yet."""
        return cls(
            latched=[False] * tiers, since=[UNSET] * tiers, counts=[0] * tiers,
            clear_since=[UNSET] * tiers, latched_at=[UNSET] * tiers,
        )  # fmt: skip


class IncidentState(msgspec.Struct, array_like=True):
    """An open incident: its id, when it opened, its nodes and its highest tier so far."""

    id: str
    district: str
    opened_ms: int
    updated_ms: int
    units: list[str]
    tier: int
    root_unit: str
    root_device_id: str | None
    category: str
    state: str = "open"


class Snapshot(msgspec.Struct, array_like=True):
    """Everything the engine needs to carry on after a restart as if it had not stopped."""

    version: int
    start_ms: int
    watermark_ms: int
    states: dict[str, RuleState]
    last_seen: dict[str, int]
    last_ts: dict[str, int]
    history: dict[str, dict[str, list[tuple[float, float]]]]
    rain: dict[str, list[tuple[float, float]]]
    node_values: dict[str, dict[str, tuple[float, float]]]
    incidents: list[IncidentState]
    status: dict[str, str]
    flap_slide_ms: int = UNSET
    """The event-time minute at which flapping windows slide next (absent from old blobs)."""


class MetaPart(msgspec.Struct, array_like=True):
    """The part of the state that is not per device, node or gauge."""

    version: int
    start_ms: int
    watermark_ms: int
    flap_slide_ms: int
    incidents: list[IncidentState]


class DevicePart(msgspec.Struct, array_like=True):
    """One device's part: its rule states that carry something (by rule name), and the rest."""

    states: dict[str, RuleState]
    last_seen: int
    last_ts: int
    history: dict[str, list[tuple[float, float]]]
    status: str | None = None


@dataclass(frozen=True, slots=True)
class StateDelta:
    """What changed since the previous checkpoint: parts to upsert and parts to delete.

    ``full`` means ``parts`` is the whole state: the store drops every other part it holds
    (the first checkpoint of an engine not restored from parts, e.g. after a migration).
    """

    parts: Mapping[str, bytes]
    deleted: frozenset[str] = frozenset()
    full: bool = False

    def merged(self, newer: StateDelta) -> StateDelta:
        """This delta followed by ``newer``, as one (a checkpoint that could not be handed over
        goes out with the next)."""
        if newer.full:
            return newer
        parts = {k: v for k, v in self.parts.items() if k not in newer.deleted}
        parts.update(newer.parts)
        deleted = frozenset() if self.full else (self.deleted - parts.keys()) | newer.deleted
        return StateDelta(parts, deleted, self.full)


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(Snapshot)
META_DECODER = msgspec.msgpack.Decoder(MetaPart)
DEVICE_DECODER = msgspec.msgpack.Decoder(DevicePart)
NODE_DECODER = msgspec.msgpack.Decoder(dict[str, tuple[float, float]])
RAIN_DECODER = msgspec.msgpack.Decoder(list[tuple[float, float]])
