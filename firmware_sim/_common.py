"""Helpers shared by the device models: local time, daily profiles, scenario windows, selections."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from firmware_sim._scenario import Selection
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device

LOCAL_OFFSET_S = 8 * 3600.0
"""Taizhou is on China Standard Time (UTC+8, no daylight saving)."""


def local_hour(at_s: float) -> float:
    """Hour of the local day, 0 <= h < 24."""
    return ((at_s + LOCAL_OFFSET_S) % 86_400.0) / 3600.0


def profile_at(profile: np.ndarray, at_s: float) -> float:
    """A 24-value hourly profile, linearly interpolated at ``at_s`` (local time)."""
    h = local_hour(at_s)
    lo = int(h) % 24
    frac = h - int(h)
    return float(profile[lo] * (1 - frac) + profile[(lo + 1) % 24] * frac)


def crossed(prev_s: float, now_s: float, hours: Sequence[float]) -> bool:
    """Whether a daily local time in ``hours`` falls in (prev_s, now_s]."""
    for h in hours:
        mark = h * 3600.0 - LOCAL_OFFSET_S
        if math.floor((now_s - mark) / 86_400.0) > math.floor((prev_s - mark) / 86_400.0):
            return True
    return False


def active(sel: Selection, rel_s: float, period_s: float) -> bool:
    """Whether a scenario entry's window holds at ``rel_s`` seconds from the simulation start."""
    t = rel_s % period_s
    return sel.start_h * 3600.0 <= t < sel.end_h * 3600.0


def select(sel: Selection, devices: Sequence[Device], kind: DeviceKind, salt: str) -> np.ndarray:
    """A boolean mask of ``devices`` (all of ``kind``) that the selection picks.

    Deterministic: the fraction is ``ceil(fraction * matching)`` devices, chosen by a generator
    seeded from ``salt`` (the scenario entry), so small fleets still see every fault.
    """
    mask = np.zeros(len(devices), dtype=bool)
    if sel.kinds is not None and kind not in sel.kinds:
        return mask
    ids = set(sel.devices or ())
    districts = set(sel.districts or ())
    for i, d in enumerate(devices):
        mask[i] = (not ids or d.device_id in ids) and (not districts or d.district in districts)
    matching = np.flatnonzero(mask)
    if sel.fraction < 1.0 and matching.size:
        rng = np.random.default_rng(zlib.crc32(salt.encode()))
        keep = rng.permutation(matching)[: math.ceil(sel.fraction * matching.size)]
        mask[:] = False
        mask[keep] = True
    return mask


def windows(
    sel: Selection, start_s: float, period_s: float, until_s: float
) -> list[tuple[float, float]]:
    """Absolute (start, end) of an entry's window in each scenario period before ``until_s``."""
    spans = []
    k = 0
    while start_s + k * period_s < until_s:
        base = start_s + k * period_s
        begin = base + sel.start_h * 3600.0
        end = base + min(sel.end_h * 3600.0, period_s)
        if begin < until_s:
            spans.append((begin, min(end, until_s)))
        k += 1
    return spans
