"""The engine's state in parts: one row per device, node and gauge, and one for the rest.

A checkpoint writes only the parts changed since the previous one (``Engine.delta()``), so its
cost follows the traffic, not the fleet. :func:`assemble` puts stored parts back together
into the whole :class:`Snapshot` the engine loads; :func:`split` cuts a whole snapshot (the
single row of a store written before checkpoints were incremental) into parts.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from alerting._state import (
    DECODER,
    DEVICE_DECODER,
    DEVICE_PREFIX,
    ENCODER,
    META_DECODER,
    META_KEY,
    NODE_DECODER,
    NODE_PREFIX,
    RAIN_DECODER,
    RAIN_PREFIX,
    SNAPSHOT_VERSION,
    UNSET,
    DevicePart,
    MetaPart,
    RuleState,
    Snapshot,
)

RULE_SEP = "\x1f"
"""Between device id and rule name in a rule state's key (``Snapshot.states``)."""


def assemble(parts: Mapping[str, bytes]) -> Snapshot:
    """The whole state from its parts; ``ValueError`` naming the part that cannot be read."""
    snap = Snapshot(
        version=SNAPSHOT_VERSION, start_ms=UNSET, watermark_ms=UNSET, states={}, last_seen={},
        last_ts={}, history={}, rain={}, node_values={}, incidents=[], status={},
    )  # fmt: skip
    for key, blob in parts.items():
        try:
            _add(snap, key, blob)
        except msgspec.DecodeError as exc:
            raise ValueError(f"state part {key!r}: {exc}") from exc
    return snap


def _add(snap: Snapshot, key: str, blob: bytes) -> None:
    if key == META_KEY:
        meta = META_DECODER.decode(blob)
        if meta.version != SNAPSHOT_VERSION:
            raise ValueError(f"state version {meta.version}, want {SNAPSHOT_VERSION}")
        snap.start_ms, snap.watermark_ms = meta.start_ms, meta.watermark_ms
        snap.flap_slide_ms, snap.incidents = meta.flap_slide_ms, meta.incidents
    elif key.startswith(DEVICE_PREFIX):
        _add_device(snap, key[len(DEVICE_PREFIX) :], DEVICE_DECODER.decode(blob))
    elif key.startswith(NODE_PREFIX):
        snap.node_values[key[len(NODE_PREFIX) :]] = NODE_DECODER.decode(blob)
    elif key.startswith(RAIN_PREFIX):
        snap.rain[key[len(RAIN_PREFIX) :]] = RAIN_DECODER.decode(blob)
    else:
        raise ValueError(f"state part {key!r}: unknown kind of part")


def _add_device(snap: Snapshot, device_id: str, part: DevicePart) -> None:
    for rule, state in part.states.items():
        snap.states[f"{device_id}{RULE_SEP}{rule}"] = state
    if part.last_seen != UNSET:
        snap.last_seen[device_id] = part.last_seen
    if part.last_ts != UNSET:
        snap.last_ts[device_id] = part.last_ts
    if part.history:
        snap.history[device_id] = part.history
    if part.status is not None:
        snap.status[device_id] = part.status


def split(blob: bytes) -> dict[str, bytes]:
    """The parts of a whole snapshot (``Engine.snapshot()``'s bytes); ``ValueError`` if it is
    not one this version can read."""
    try:
        snap = DECODER.decode(blob)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a whole-state snapshot: {exc}") from exc
    if snap.version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {snap.version}, want {SNAPSHOT_VERSION}")
    meta = MetaPart(SNAPSHOT_VERSION, snap.start_ms, snap.watermark_ms, snap.flap_slide_ms,
                    snap.incidents)  # fmt: skip
    parts = {META_KEY: ENCODER.encode(meta)}
    states: dict[str, dict[str, RuleState]] = {}
    for key, state in snap.states.items():
        device_id, rule = key.split(RULE_SEP, 1)
        states.setdefault(device_id, {})[rule] = state
    devices = {*states, *snap.last_seen, *snap.last_ts, *snap.history, *snap.status}
    for device_id in sorted(devices):
        part = DevicePart(
            states.get(device_id, {}), snap.last_seen.get(device_id, UNSET),
            snap.last_ts.get(device_id, UNSET), snap.history.get(device_id, {}),
            snap.status.get(device_id),
        )  # fmt: skip
        parts[DEVICE_PREFIX + device_id] = ENCODER.encode(part)
    for node, values in snap.node_values.items():
        parts[NODE_PREFIX + node] = ENCODER.encode(values)
    for gauge, points in snap.rain.items():
        parts[RAIN_PREFIX + gauge] = ENCODER.encode(points)
    return parts
