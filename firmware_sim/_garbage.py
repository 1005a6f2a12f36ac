"""Garbage stations (集中投放亭): four bins fill through the day, emptied at fixed times (定时定点).

Residents bring waste mostly around the morning and evening disposal windows; collection crews
empty the bins at fixed hours. A missed collection lets the next half-day's waste pile on top, so
bins read above 100 % (overflowing). A fire drives the station's temperature up for its duration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from firmware_sim._common import active, crossed, local_hour, profile_at, select
from firmware_sim._events import SpanTracker, TruthEvent, spans_to_events
from firmware_sim._scenario import INCIDENT_KIND, Incident, Scenario
from telemetry_core.kinds import WASTE_CATEGORIES, DeviceKind
from telemetry_core.registry import Device

DISPOSAL = np.array(
    [0.05, 0.02, 0.02, 0.02, 0.05, 0.30, 1.20, 2.00, 1.60, 0.60, 0.50, 0.60,
     0.80, 0.60, 0.40, 0.40, 0.60, 1.20, 2.00, 1.80, 1.00, 0.50, 0.20, 0.10]
)  # fmt: skip
DISPOSAL = DISPOSAL / DISPOSAL.mean()
DENSITY_KG_L = np.array([0.45, 0.08, 0.25, 0.15])  # kitchen, recyclable, hazardous, other
SPILL_LIMIT = 1.6
"""Waste piles up to 160 % of a bin's volume before it spills onto the ground unmeasured."""
FIRE_C = 280.0


def stretch_profile_hours(collection_hours: Sequence[float]) -> list[float]:
    """Per stretch between consecutive daily collections, the disposal profile's integral (h).

    With no collection the stretch is the whole day.
    """
    hours = sorted(set(collection_hours)) or [0.0]
    grid = np.arange(0.0, 24.0, 1.0 / 60.0)
    per_minute = np.interp(grid, np.arange(25.0), np.append(DISPOSAL, DISPOSAL[0])) / 60.0
    cumulative = np.concatenate([[0.0], np.cumsum(per_minute)])
    at = [cumulative[round(h * 60)] for h in hours]
    day = float(cumulative[-1])
    return [float((b - a) % day) or day for a, b in zip(at, at[1:] + at[:1], strict=True)]


class GarbageModel:
    """Vectorised state of every garbage station in a fleet."""

    def __init__(
        self, devices: Sequence[Device], scenario: Scenario, seed: int, start_s: float
    ) -> None:
        self.devices = devices
        self._scenario = scenario
        self._start_s = start_s
        self._rng = np.random.default_rng([seed, 33])
        n = len(devices)
        self.capacity_l = np.array(
            [[d.attr(f"bin_{c}_l") for c in WASTE_CATEGORIES] for d in devices]
        ).reshape(n, 4)
        # Litres per profile-hour: the fullest stretch between two collections brings 45-85 %.
        busiest = max(stretch_profile_hours(scenario.collection_hours))
        self.rate_l_h = self.capacity_l * self._rng.uniform(0.45, 0.85, (n, 4)) / busiest
        self.fill_l = self.capacity_l * self._rng.uniform(0.0, 0.3, (n, 4))
        self.temperature = np.full(n, 22.0)
        self.fires = self._selected("fire")
        self.missed = [
            (
                sel,
                self._bins(sel.categories, select(sel, devices, DeviceKind.GARBAGE, f"missed/{k}")),
            )
            for k, sel in enumerate(scenario.missed_collections)
        ]
        self.crowds = [
            (c, select(c, devices, DeviceKind.GARBAGE, f"crowd/{k}"))
            for k, c in enumerate(scenario.crowds)
        ]
        self._overdue = np.zeros((n, 4), dtype=bool)
        self._full = SpanTracker(4 * n)
        self._missed = SpanTracker(4 * n)
        self._burning = SpanTracker(n)
        self._battery = self._rng.uniform(12.2, 12.8, n)
        self._rssi = self._rng.normal(-76.0, 6.0, n)

    @staticmethod
    def _bins(categories: Sequence[str] | None, stations: np.ndarray) -> np.ndarray:
        """(n, 4) mask of the bins of ``categories`` (all if None) at the selected stations."""
        wanted = np.array([categories is None or c in categories for c in WASTE_CATEGORIES])
        return np.asarray(stations[:, None] & wanted[None, :], dtype=bool)

    def _selected(self, kind: str) -> list[tuple[Incident, np.ndarray]]:
        return [
            (inc, select(inc, self.devices, DeviceKind.GARBAGE, f"incident/{k}/{inc.type}"))
            for k, inc in enumerate(self._scenario.incidents)
            if inc.type == kind and INCIDENT_KIND[inc.type] is DeviceKind.GARBAGE
        ]

    def step(self, at_s: float, rel_s: float, dt_s: float) -> None:
        """Advance every station by ``dt_s`` seconds, ending at absolute time ``at_s``."""
        period = self._scenario.duration_s
        mult = np.ones(len(self.devices))
        for crowd, mask in self.crowds:
            if active(crowd, rel_s, period):
                mult[mask] *= crowd.multiplier
        noise = self._rng.lognormal(0.0, 0.3, self.fill_l.shape)
        added = self.rate_l_h * (profile_at(DISPOSAL, at_s) * dt_s / 3600.0) * noise
        self.fill_l = np.minimum(self.fill_l + added * mult[:, None], self.capacity_l * SPILL_LIMIT)
        if crossed(at_s - dt_s, at_s, self._scenario.collection_hours):
            self._collect(rel_s)
        self._heat(at_s, rel_s, dt_s)

    def _collect(self, rel_s: float) -> None:
        skipped: np.ndarray = np.zeros(self.fill_l.shape, dtype=bool)
        for sel, mask in self.missed:
            if active(sel, rel_s, self._scenario.duration_s):
                skipped |= mask
        self.fill_l[~skipped] *= 0.02  # a little always sticks to the bin
        self._overdue = skipped  # a bin stays overdue until a collection empties it

    def _heat(self, at_s: float, rel_s: float, dt_s: float) -> None:
        ambient = 22.0 + 5.0 * np.sin(2 * np.pi * (local_hour(at_s) - 9.0) / 24.0)
        # Decomposing kitchen waste warms a full station by a few degrees.
        target = ambient + 4.0 * self.fill_l[:, 0] / self.capacity_l[:, 0]
        for inc, mask in self.fires:
            if active(inc, rel_s, self._scenario.duration_s):
                target = np.where(mask, FIRE_C, target)
        tau = np.where(target > self.temperature + 50.0, 300.0, 1200.0)
        self.temperature += (target - self.temperature) * (1 - np.exp(-dt_s / tau))

    def record(self, at_s: float, rel_s: float) -> None:
        """Note the ground truth at tick ``at_s``: full bins, overdue bins, fires."""
        pct = (100.0 * self.fill_l / self.capacity_l).ravel()
        self._full.update(at_s, pct >= 100.0, pct)
        self._missed.update(at_s, self._overdue.ravel(), pct)
        burning = np.zeros(len(self.devices), dtype=bool)
        for inc, mask in self.fires:
            if active(inc, rel_s, self._scenario.duration_s):
                burning |= mask
        self._burning.update(at_s, burning, self.temperature)

    def values(self, metrics: Sequence[str]) -> np.ndarray:
        """True values now, columns in ``metrics`` order."""
        pct = 100.0 * self.fill_l / self.capacity_l
        columns = {f"fill_{c}_pct": pct[:, k] for k, c in enumerate(WASTE_CATEGORIES)}
        columns["weight_kg"] = self.fill_l @ DENSITY_KG_L
        columns["temperature_c"] = self.temperature
        columns["battery_v"] = self._battery
        columns["rssi_dbm"] = self._rssi
        return np.column_stack([columns[m] for m in metrics])

    def truth_events(self, until_s: float) -> list[TruthEvent]:
        """Bins full and collections missed per bin (``category=``), fires per station."""
        stations = [(d.device_id, d.district) for d in self.devices]
        bins = [s for s in stations for _ in WASTE_CATEGORIES]
        categories = [f"category={c}" for _ in stations for c in WASTE_CATEGORIES]
        kind = DeviceKind.GARBAGE
        return (
            spans_to_events(self._full.spans(until_s), "bin_full", bins, kind, categories)
            + spans_to_events(
                self._missed.spans(until_s), "missed_collection", bins, kind, categories
            )
            + spans_to_events(
                self._burning.spans(until_s), "fire", stations, kind, [""] * len(stations)
            )
        )
