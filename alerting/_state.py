"""The engine's state as msgspec structs: small on the hot path, one ``encode`` for a snapshot.

``-1`` stands for "not set" in the millisecond fields, so each struct stays a flat array.
"""

from __future__ import annotations

import msgspec

SNAPSHOT_VERSION = 1
UNSET = -1


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


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(Snapshot)
