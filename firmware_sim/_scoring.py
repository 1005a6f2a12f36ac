"""Scoring warnings against the ground truth: precision, recall and lead time per label.

The matching rule (docs/simulator.md, "Scoring"):

1. Alerts for another label, or below ``min_tier`` (none < blue < yellow < orange < red), are
   ignored.
2. Each alert maps to a unit: ``device_units[device_id]``, else the unit of an event that lists
   the device, else the device id itself.
3. Per unit, alerts in time order form **warnings**: an alert less than ``horizon_s`` after the
   previous one joins its warning, so several sensors on one manhole warn once. A warning is at
   its first alert's time.
4. A warning matches an event of the same unit and label when
   ``onset_s - horizon_s <= warning.at_s <= end_s``.
5. Precision = matched warnings / warnings (1.0 with no warnings); recall = events with a
   matching warning at or before onset / events (1.0 with no events); an event is *detected*
   when a matching warning comes before its end, late ones included; its lead time is onset
   minus its first matching warning, for warned events.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from firmware_sim._events import TruthEvent, load_truth_events

TIERS = ("none", "blue", "yellow", "orange", "red")
"""Alert tiers from least to most severe."""

__all__ = [
    "TIERS",
    "LabelScore",
    "ScoredAlert",
    "TruthEvent",
    "load_truth_events",
    "score_alerts",
]


@dataclass(frozen=True, slots=True)
class ScoredAlert:
    """An alert as scored: which device, when (epoch s), its tier and the label it predicts."""

    device_id: str
    at_s: float
    tier: str
    label: str

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"alert on {self.device_id}: tier {self.tier!r} is not one of {TIERS}")


@dataclass(frozen=True, slots=True)
class LabelScore:
    """How well warnings for one label met its events."""

    label: str
    warnings: int
    true_warnings: int
    events: int
    events_warned: int
    events_detected: int
    precision: float
    recall: float
    lead_times_s: tuple[float, ...]
    median_lead_s: float | None


@dataclass(frozen=True, slots=True)
class _Warning:
    unit: str
    at_s: float


def _unit_of(
    device_units: Mapping[str, str] | None, events: Sequence[TruthEvent]
) -> Mapping[str, str]:
    # Only shared units: a device's own events (faults, outages) are its own unit anyway, and
    # must not hide the manhole an overflow event says it reads.
    units = {d: e.unit for e in events for d in e.device_ids if e.unit != d}
    return units | dict(device_units or {})


def _warnings(
    alerts: Iterable[ScoredAlert], units: Mapping[str, str], horizon_s: float
) -> list[_Warning]:
    by_unit: dict[str, list[float]] = {}
    for a in alerts:
        by_unit.setdefault(units.get(a.device_id, a.device_id), []).append(a.at_s)
    warnings = []
    for unit, times in by_unit.items():
        times.sort()
        previous = None
        for t in times:
            if previous is None or t - previous >= horizon_s:
                warnings.append(_Warning(unit, t))
            previous = t
    return warnings


def _match(
    events: Sequence[TruthEvent], warnings: Sequence[_Warning], horizon_s: float
) -> tuple[set[int], list[float], int]:
    """Warnings (by index) that match an event, lead times of warned events, events detected."""
    at_unit: dict[str, list[tuple[int, float]]] = {}
    for n, w in enumerate(warnings):
        at_unit.setdefault(w.unit, []).append((n, w.at_s))
    matched: set[int] = set()
    leads, detected = [], 0
    for e in sorted(events, key=lambda e: e.onset_s):
        hits = [(n, t) for n, t in at_unit.get(e.unit, ()) if e.onset_s - horizon_s <= t <= e.end_s]
        matched.update(n for n, _ in hits)
        first = min((t for _, t in hits), default=None)
        detected += first is not None
        if first is not None and first <= e.onset_s:
            leads.append(e.onset_s - first)
    return matched, leads, detected


def score_alerts(
    alerts: Iterable[ScoredAlert],
    events: Sequence[TruthEvent],
    *,
    label: str,
    horizon_s: float,
    min_tier: str = "orange",
    device_units: Mapping[str, str] | None = None,
) -> LabelScore:
    """Score ``alerts`` predicting ``label`` against ``events`` by the module's matching rule."""
    if min_tier not in TIERS:
        raise ValueError(f"min_tier {min_tier!r} is not one of {TIERS}")
    if horizon_s < 0:
        raise ValueError(f"horizon_s must be >= 0, got {horizon_s}")
    floor = TIERS.index(min_tier)
    kept = [a for a in alerts if a.label == label and TIERS.index(a.tier) >= floor]
    wanted = [e for e in events if e.label == label]
    warnings = _warnings(kept, _unit_of(device_units, events), horizon_s)
    matched, leads, detected = _match(wanted, warnings, horizon_s)
    true = len(matched)
    return LabelScore(
        label=label, warnings=len(warnings), true_warnings=true, events=len(wanted),
        events_warned=len(leads), events_detected=detected,
        precision=true / len(warnings) if warnings else 1.0,
        recall=len(leads) / len(wanted) if wanted else 1.0,
        lead_times_s=tuple(leads), median_lead_s=statistics.median(leads) if leads else None,
    )  # fmt: skip
