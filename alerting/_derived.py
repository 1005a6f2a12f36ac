"""Metrics a rule can name: a kind's raw metrics, and metrics derived from the registry.

A derived metric is a small function of one reading's metrics and the device's static attributes
(``ground_elev_m``, ``invert_elev_m``, ``pipe_diameter_m``, ...), compiled once per device into a
closure, so the hot path does one dict look-up and a little arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from telemetry_core.kinds import KINDS, WASTE_CATEGORIES
from telemetry_core.registry import Device

Extractor = Callable[[Mapping[str, float]], float | None]
"""From one reading's metrics to the rule's value, or ``None`` when the reading lacks it."""

RAIN_METRICS: Final = {"rain_mmh": (0.0, 500.0), "rain_day_mm": (0.0, 2000.0)}
"""The rain gauge's metrics (contract §1), used when ``telemetry_core`` does not list the kind."""
_COMMON: Final = {"battery_v": (0.0, 30.0), "rssi_dbm": (-150.0, 0.0)}


@dataclass(frozen=True, slots=True)
class Derived:
    """A derived metric: what it needs, its range, and how to compute it."""

    needs: tuple[str, ...]
    attributes: tuple[str, ...]
    low: float
    high: float
    description: str


DERIVED: Final[dict[str, dict[str, Derived]]] = {
    "drain": {
        "depth_below_ground_m": Derived(
            ("level_m",), ("ground_elev_m", "invert_elev_m"), -30.0, 60.0,
            "ground_elev - invert_elev - level: water below the cover (<= 0: overflow)",
        ),
        "freeboard_m": Derived(
            ("level_m",), ("pipe_diameter_m",), -30.0, 30.0,
            "pipe_diameter - level: headroom to the pipe crown (< 0: surcharged)",
        ),
        "manhole_fill": Derived(
            ("level_m",), ("ground_elev_m", "invert_elev_m"), -1.0, 30.0,
            "level / (ground_elev - invert_elev): share of the manhole filled (1: at the cover)",
        ),
        "pipe_fill": Derived(
            ("level_m",), ("pipe_diameter_m",), -1.0, 60.0,
            "level / pipe_diameter from the registry (> 1: surcharged): the fill ratio of a "
            "sensor that reports its level only",
        ),
    },
    "toilet": {
        "occupancy_ratio": Derived(
            ("occupied_stalls",), ("stalls",), 0.0, 100.0, "occupied stalls / stalls"
        ),
        "fault_blocked_pan": Derived(("fault_code",), (), 0.0, 1.0, "fault_code bit 1 (value 1)"),
        "fault_leak": Derived(("fault_code",), (), 0.0, 1.0, "fault_code bit 2 (value 2)"),
        "fault_fan": Derived(("fault_code",), (), 0.0, 1.0, "fault_code bit 3 (value 4)"),
    },
    "garbage": {
        "fill_max_pct": Derived(
            tuple(f"fill_{c}_pct" for c in WASTE_CATEGORIES), (), 0.0, 200.0,
            "the fullest of the four bins",
        ),
        **{
            f"free_{c}_l": Derived(
                (f"fill_{c}_pct",), (f"bin_{c}_l",), -10_000.0, 10_000.0,
                f"bin_{c}_l * (1 - fill_{c}_pct / 100): litres left in the {c} bins "
                "(< 0: overfilled)",
            )
            for c in WASTE_CATEGORIES
        },
    },
}  # fmt: skip
FAULT_BITS: Final = {"fault_blocked_pan": 1, "fault_leak": 2, "fault_fan": 4}


def raw_metrics(kind: str) -> dict[str, tuple[float, float]]:
    """The physical range of each raw metric of ``kind`` (empty for an unknown kind)."""
    for spec in KINDS.values():
        if spec.kind.value == kind:
            return {name: (m.low, m.high) for name, m in spec.metrics.items()}
    return {**RAIN_METRICS, **_COMMON} if kind == "rain" else {}


def known_kinds() -> tuple[str, ...]:
    """Every device kind a rule may select."""
    return tuple(sorted({spec.kind.value for spec in KINDS.values()} | {"rain"}))


def metric_range(kind: str, metric: str) -> tuple[float, float] | None:
    """The range of a raw or derived metric of ``kind``; ``None`` if the kind lacks it."""
    derived = DERIVED.get(kind, {}).get(metric)
    if derived is not None:
        return derived.low, derived.high
    return raw_metrics(kind).get(metric)


def extractor(kind: str, metric: str, device: Device) -> Extractor | None:
    """The value of ``metric`` for ``device`` from a reading; ``None`` if its registry lacks
    an attribute the metric needs (the rule then does not apply to this device)."""
    spec = DERIVED.get(kind, {}).get(metric)
    if spec is None:
        return lambda readings: readings.get(metric)
    attrs: dict[str, float] = {}
    for name in spec.attributes:
        value = device.attributes.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        attrs[name] = float(value)
    return _derived(metric, attrs)


def _free_litres(metric: str, attrs: dict[str, float]) -> Extractor:
    litres, fill = attrs[f"bin_{metric[5:-2]}_l"], f"fill_{metric[5:-2]}_pct"
    return lambda r: None if (f := r.get(fill)) is None else litres * (1.0 - f / 100.0)


def _depth_below_ground(a: dict[str, float]) -> Extractor:
    depth = a["ground_elev_m"] - a["invert_elev_m"]
    return lambda r: None if (lv := r.get("level_m")) is None else depth - lv


def _manhole_fill(a: dict[str, float]) -> Extractor:
    depth = max(a["ground_elev_m"] - a["invert_elev_m"], 1e-6)
    return lambda r: None if (lv := r.get("level_m")) is None else lv / depth


def _freeboard(a: dict[str, float]) -> Extractor:
    diameter = a["pipe_diameter_m"]
    return lambda r: None if (lv := r.get("level_m")) is None else diameter - lv


def _pipe_fill(a: dict[str, float]) -> Extractor:
    diameter = max(a["pipe_diameter_m"], 1e-6)
    return lambda r: None if (lv := r.get("level_m")) is None else lv / diameter


def _occupancy(a: dict[str, float]) -> Extractor:
    stalls = max(a["stalls"], 1.0)
    return lambda r: None if (n := r.get("occupied_stalls")) is None else n / stalls


def _fill_max(_a: dict[str, float]) -> Extractor:
    names = tuple(f"fill_{c}_pct" for c in WASTE_CATEGORIES)
    return lambda r: max((r[n] for n in names if n in r), default=None)


_FORMULAS: Final[dict[str, Callable[[dict[str, float]], Extractor]]] = {
    "depth_below_ground_m": _depth_below_ground, "manhole_fill": _manhole_fill,
    "freeboard_m": _freeboard, "pipe_fill": _pipe_fill, "occupancy_ratio": _occupancy,
    "fill_max_pct": _fill_max,
}  # fmt: skip


def _derived(metric: str, a: dict[str, float]) -> Extractor:
    formula = _FORMULAS.get(metric)
    if formula is not None:
        return formula(a)
    if metric in FAULT_BITS:
        bit = FAULT_BITS[metric]
        return lambda r: None if (c := r.get("fault_code")) is None else float(int(c) & bit != 0)
    return _free_litres(metric, a)  # the only ones left: free_<category>_l
