"""Skip gates: the engine's fast path for readings that cannot change an idle alert.

For each tier, a *necessary* comparison on a raw metric (the tier's own comparison, or one under
``all``; a derived metric mapped back to its raw metric through the device's attributes) gives an
open interval of raw values in which that tier cannot raise. While an alert is idle (no tier
latched, nothing counted), a reading whose gate metrics all lie inside their intervals is
skipped without calling the evaluator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from alerting._derived import DERIVED, FAULT_BITS
from alerting._evaluate import Evaluator, RangeEvaluator, ThresholdEvaluator
from alerting._model import Condition
from telemetry_core.registry import Device

Gate = tuple[str, float, float]
_INF: Final = float("inf")
_LINEAR: Final = {
    # derived metric: (raw metric, offset attributes (+, -), scale attribute) -> a + b * raw
    "depth_below_ground_m": "level_m",
    "freeboard_m": "level_m",
    "manhole_fill": "level_m",
    "occupancy_ratio": "occupied_stalls",
}
_DERIVED: Final = frozenset(m for metrics in DERIVED.values() for m in metrics)


def evaluator_gates(
    ev: Evaluator, device: Device, forecast: bool = False
) -> tuple[Gate, ...] | None:
    """Gates that must all hold for ``ev`` to skip a reading while idle; ``None``: never skip.

    A threshold rule has one per tier; an out-of-range rule one per metric (its range).
    ``forecast``: whether the device's node has the hydraulic forecast; without it an option
    that needs a forecast flood can never hold and is left out of the gate.
    """
    rule = ev.rule
    if isinstance(ev, RangeEvaluator):
        return tuple(
            (m, math.nextafter(lo, -_INF), math.nextafter(hi, _INF)) for m, lo, hi in ev.ranges
        )
    if not isinstance(ev, ThresholdEvaluator):
        return None
    metric = rule.rule.metric or ""
    gates = []
    for tier in rule.rule.tiers:
        gate = _tier_gate(tier.raise_, metric, rule.kind, device, forecast)
        if gate is None:
            return None
        gates.append(gate)
    return tuple(gates) or None


def merge_gates(gates: list[tuple[Gate, ...]]) -> tuple[Gate, ...]:
    """One interval per metric holding every gate at once (their intersection)."""
    merged: dict[str, tuple[float, float]] = {}
    for group in gates:
        for m, lo, hi in group:
            old = merged.get(m, (-_INF, _INF))
            merged[m] = (max(old[0], lo), min(old[1], hi))
    return tuple((m, lo, hi) for m, (lo, hi) in merged.items())


def _never_without_forecast(cond: Condition) -> bool:
    """Whether ``cond`` needs a forecast flood (``unknown: never``) to hold."""
    spec = cond.forecast
    if spec is not None and spec.expect == "flood" and spec.unknown == "never":
        return True
    return any(_never_without_forecast(sub) for sub in cond.all)


def _tier_gate(
    cond: Condition, metric: str, kind: str, device: Device, forecast: bool = False
) -> Gate | None:
    cmp = cond.comparator()
    if cmp is not None:
        gate = _gate(cond.metric or metric, cmp, device)
        if gate is not None:
            return gate
    for sub in cond.all:
        gate = _tier_gate(sub, metric, kind, device, forecast)
        if gate is not None:
            return gate
    if cond.any:
        # skip only where no option can hold: the intersection of the options' skip intervals
        usable = [s for s in cond.any if forecast or not _never_without_forecast(s)]
        options = [_tier_gate(sub, metric, kind, device, forecast) for sub in usable]
        if not options:
            return None
        if all(o is not None for o in options) and len({o[0] for o in options if o}) == 1:
            lows, highs = zip(*((o[1], o[2]) for o in options if o), strict=True)
            return (options[0][0] if options[0] else "", max(lows), min(highs))
    return None


def _gate(metric: str, cmp: tuple[str, float], device: Device) -> Gate | None:
    op, thr = cmp
    rising = op in ("above", "at_least")
    if metric in FAULT_BITS:
        return ("fault_code", -0.5, 0.5) if rising and thr > 0 else None
    if metric in _DERIVED and metric not in _LINEAR:
        return None  # of several raw metrics (fill_max_pct): no reading carries its name
    linear = _linear(metric, device) if metric in _LINEAR else (metric, 0.0, 1.0)
    if linear is None:
        return None
    raw, a, b = linear
    bound = (thr - a) / b
    if b < 0:
        rising = not rising
    return (raw, -_INF, bound) if rising else (raw, bound, _INF)


def _linear(metric: str, device: Device) -> tuple[str, float, float] | None:
    """``derived = a + b * raw`` for the device, from its registry attributes."""
    try:
        if metric == "depth_below_ground_m":
            return "level_m", device.attr("ground_elev_m") - device.attr("invert_elev_m"), -1.0
        if metric == "freeboard_m":
            return "level_m", device.attr("pipe_diameter_m"), -1.0
        if metric == "manhole_fill":
            depth = device.attr("ground_elev_m") - device.attr("invert_elev_m")
            return ("level_m", 0.0, 1.0 / depth) if depth > 1e-6 else None
        return "occupied_stalls", 0.0, 1.0 / max(device.attr("stalls"), 1.0)
    except ValueError:
        return None


ARMING_MARGIN: Final = 0.5
"""Fit windows fill from half-way to a gate, so a fit has its points when the gate is crossed."""


def arming_gates(gates: list[tuple[Gate, ...] | None]) -> tuple[Gate, ...] | None:
    """The merged gates of the rules that fit trends, widened by ``ARMING_MARGIN`` towards the
    quiet side; ``None`` (always armed) when such a rule has no gates, or when there is none
    (nothing to feed but rain and node values, kept always)."""
    if not gates or any(g is None for g in gates):
        return None
    merged = merge_gates([g for g in gates if g is not None])
    widened = []
    for m, low, high in merged:
        hi = high - ARMING_MARGIN * abs(high) if high < _INF else high
        lo = low + ARMING_MARGIN * abs(low) if low > -_INF else low
        widened.append((m, lo, hi))
    return tuple(widened)


def outside(gates: tuple[Gate, ...], readings: Mapping[str, float]) -> bool:
    """Whether any present gate metric lies outside its interval."""
    for m, lo, hi in gates:
        v = readings.get(m)
        if v is not None and not lo < v < hi:
            return True
    return False
