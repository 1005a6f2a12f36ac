"""Garbage stations (集中投放亭): four bins fill through the day, emptied at fixed times (定时定点).

Residents bring waste mostly around the morning and evening disposal windows; collection crews
empty the bins at fixed hours. A missed collection lets the next half-day's waste pile on top, so
bins read above 100 % (overflowing). A fire drives the station's temperature up for its duration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from firmware_sim._common import active, crossed, local_hour, profile_at, select, windows
from firmware_sim._scenario import INCIDENT_KIND, Incident, Scenario
from firmware_sim._truth import GroundTruthRecord
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
        # Litres per hour on an average hour: 45-85 % of a bin between two collections (12 h).
        self.rate_l_h = self.capacity_l * self._rng.uniform(0.45, 0.85, (n, 4)) / 12.0
        self.fill_l = self.capacity_l * self._rng.uniform(0.0, 0.3, (n, 4))
        self.temperature = np.full(n, 22.0)
        self.fires = self._selected("fire")
        self.missed = [
            (sel, select(sel, devices, DeviceKind.GARBAGE, f"missed/{k}"))
            for k, sel in enumerate(scenario.missed_collections)
        ]
        self.crowds = [
            (c, select(c, devices, DeviceKind.GARBAGE, f"crowd/{k}"))
            for k, c in enumerate(scenario.crowds)
        ]
        self._full_since = np.full(n, np.nan)
        self.full_spans: list[tuple[int, float, float]] = []
        self._battery = self._rng.uniform(12.2, 12.8, n)
        self._rssi = self._rng.normal(-76.0, 6.0, n)

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
        self._track_full(at_s)

    def _collect(self, rel_s: float) -> None:
        skipped = np.zeros(len(self.devices), dtype=bool)
        for sel, mask in self.missed:
            if active(sel, rel_s, self._scenario.duration_s):
                skipped |= mask
        self.fill_l[~skipped] *= 0.02  # a little always sticks to the bin

    def _heat(self, at_s: float, rel_s: float, dt_s: float) -> None:
        ambient = 22.0 + 5.0 * np.sin(2 * np.pi * (local_hour(at_s) - 9.0) / 24.0)
        # Decomposing kitchen waste warms a full station by a few degrees.
        target = ambient + 4.0 * self.fill_l[:, 0] / self.capacity_l[:, 0]
        for inc, mask in self.fires:
            if active(inc, rel_s, self._scenario.duration_s):
                target = np.where(mask, FIRE_C, target)
        tau = np.where(target > self.temperature + 50.0, 300.0, 1200.0)
        self.temperature += (target - self.temperature) * (1 - np.exp(-dt_s / tau))

    def _track_full(self, at_s: float) -> None:
        full = (self.fill_l >= self.capacity_l).any(axis=1)
        began = full & np.isnan(self._full_since)
        self._full_since[began] = at_s
        ended = ~full & ~np.isnan(self._full_since)
        for i in np.flatnonzero(ended):
            self.full_spans.append((int(i), float(self._full_since[i]), at_s))
        self._full_since[ended] = np.nan

    def values(self, metrics: Sequence[str]) -> np.ndarray:
        """True values now, columns in ``metrics`` order."""
        pct = 100.0 * self.fill_l / self.capacity_l
        columns = {f"fill_{c}_pct": pct[:, k] for k, c in enumerate(WASTE_CATEGORIES)}
        columns["weight_kg"] = self.fill_l @ DENSITY_KG_L
        columns["temperature_c"] = self.temperature
        columns["battery_v"] = self._battery
        columns["rssi_dbm"] = self._rssi
        return np.column_stack([columns[m] for m in metrics])

    def ground_truth(self, until_s: float) -> list[GroundTruthRecord]:
        """Bins full (from the simulated state so far) and fires (from the scenario)."""
        records = [
            GroundTruthRecord(self.devices[i].device_id, DeviceKind.GARBAGE, a, b, "bin_full")
            for i, a, b in self.full_spans
        ]
        for i in np.flatnonzero(~np.isnan(self._full_since)).tolist():
            start = float(self._full_since[i])
            records.append(
                GroundTruthRecord(
                    self.devices[i].device_id, DeviceKind.GARBAGE, start, until_s, "bin_full"
                )
            )
        period = self._scenario.duration_s
        for inc, mask in self.fires:
            for a, b in windows(inc, self._start_s, period, until_s):
                records += [
                    GroundTruthRecord(self.devices[i].device_id, DeviceKind.GARBAGE, a, b, "fire")
                    for i in np.flatnonzero(mask).tolist()
                ]
        return records
