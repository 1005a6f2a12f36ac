"""Smart public toilets: Poisson footfall, stalls, odour that builds with use, consumables, faults.

Odour is a well-mixed box: each use leaves residue that releases ammonia and hydrogen sulphide
into the room's air over about half an hour, cleaners remove most residue, ventilation carries the
gas out (more air changes for a better class of toilet). Calibrated so that a normal day meets the
class's GB/T 17217-1998 limits (NH3 0.3 / 1 / 3 mg/m3 for class 1 / 2 / 3, H2S 0.01 mg/m3) with
the busiest hour at about half the ammonia limit; a crowd fills every stall (about twice the
normal peak use), a failed fan cuts ventilation to a tenth and a blocked pan is a strong source
of hydrogen sulphide: those exceed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from firmware_sim._common import active, crossed, local_hour, profile_at, select
from firmware_sim._events import SpanTracker, TruthEvent, spans_to_events
from firmware_sim._scenario import INCIDENT_KIND, Scenario
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device

FOOTFALL = np.array(
    [0.10, 0.05, 0.03, 0.03, 0.05, 0.20, 0.50, 0.90, 1.00, 0.90, 0.80, 0.85,
     0.90, 0.80, 0.75, 0.80, 0.90, 1.00, 0.95, 0.80, 0.60, 0.45, 0.30, 0.15]
)  # fmt: skip
"""Share of the peak visit rate by local hour."""
CLEANER_HOURS = (6.5, 12.5, 17.5)
NH3_LIMIT_MGM3 = {1: 0.3, 2: 1.0, 3: 3.0}
"""GB/T 17217-1998 (城市公共厕所卫生标准), ammonia limit by toilet class."""
H2S_LIMIT_MGM3 = 0.01
"""GB/T 17217-1998, hydrogen sulphide limit, the same for every class."""
AIR_CHANGES_PER_H = {1: 20.0, 2: 6.0, 3: 2.0}
ROOM_M3_PER_STALL = 12.0
NH3_MG_PER_USE = 6.0
"""Ammonia a use leaves in residue (urine on the fittings), released as it hydrolyses."""
H2S_MG_PER_USE = 0.02
"""Hydrogen sulphide a use leaves (faeces, the trap), released the same way."""
RELEASE_S = 1800.0
"""Time constant of the release from residue into the air."""
CLEANED_KEEP = 0.3
"""Share of residue a cleaner leaves behind."""
BLOCKED_NH3_MG_H = 40.0
BLOCKED_H2S_MG_H = 30.0
"""A blocked pan stands full: a strong source, of hydrogen sulphide above all."""
BACKGROUND_NH3_MG_H = 1.0
"""Per stall: drains and bins emit a little all the time."""
MEAN_STAY_S = 240.0
FAULT_BITS = {"blocked_pan": 1, "leak": 2, "fan_failure": 4}
LEAK_L_PER_S = 0.25


class ToiletModel:
    """Vectorised state of every toilet in a fleet."""

    def __init__(self, devices: Sequence[Device], scenario: Scenario, seed: int) -> None:
        self.devices = devices
        self._scenario = scenario
        self._rng = np.random.default_rng([seed, 22])
        n = len(devices)
        self.stalls = np.array([max(1.0, d.attr("stalls")) for d in devices])
        klass = np.array([int(d.attr("toilet_class")) for d in devices], dtype=int)
        self.toilet_class = klass
        self.nh3_limit = np.array([NH3_LIMIT_MGM3.get(int(k), 3.0) for k in klass])
        self._odour_nh3 = SpanTracker(n)
        self._odour_h2s = SpanTracker(n)
        self.air_changes = np.array([AIR_CHANGES_PER_H.get(int(k), 6.0) for k in klass])
        self.volume_m3 = self.stalls * ROOM_M3_PER_STALL
        self.peak_rate_h = self.stalls * self._rng.uniform(5.0, 9.0, n)
        self.occupied = np.zeros(n)
        self.queue = np.zeros(n)
        self.footfall_total = np.zeros(n)
        self.water_total_l = np.zeros(n)
        self.nh3 = np.full(n, 0.02)
        self.h2s = np.full(n, 0.0005)
        self._residue = np.zeros((2, n))  # mg of NH3 and H2S waiting to be released
        self.paper = self._rng.uniform(60.0, 100.0, n)
        self.soap = self._rng.uniform(60.0, 100.0, n)
        self.fault_code = np.zeros(n)
        self.masks = [
            (inc, select(inc, devices, DeviceKind.TOILET, f"incident/{k}/{inc.type}"))
            for k, inc in enumerate(scenario.incidents)
            if INCIDENT_KIND[inc.type] is DeviceKind.TOILET
        ]
        self.crowds = [
            (c, select(c, devices, DeviceKind.TOILET, f"crowd/{k}"))
            for k, c in enumerate(scenario.crowds)
        ]
        self._battery = self._rng.uniform(23.6, 24.4, n)  # mains supply behind a 24 V adapter
        self._rssi = self._rng.normal(-72.0, 6.0, n)

    def _multiplier(self, rel_s: float) -> np.ndarray:
        mult = np.ones(len(self.devices))
        for crowd, mask in self.crowds:
            if active(crowd, rel_s, self._scenario.duration_s):
                mult[mask] *= crowd.multiplier
        return mult

    def _faults(self, rel_s: float) -> None:
        self.fault_code[:] = 0
        for inc, mask in self.masks:
            if active(inc, rel_s, self._scenario.duration_s):
                self.fault_code[mask] = np.bitwise_or(
                    self.fault_code[mask].astype(int), FAULT_BITS[inc.type]
                )

    def step(self, at_s: float, rel_s: float, dt_s: float) -> None:
        """Advance every toilet by ``dt_s`` seconds, ending at absolute time ``at_s``."""
        self._faults(rel_s)
        code = self.fault_code.astype(int)
        blocked, leak, fan = ((code & b) > 0 for b in (1, 2, 4))
        rate = self.peak_rate_h * profile_at(FOOTFALL, at_s) * self._multiplier(rel_s)
        arrivals = self._rng.poisson(rate * dt_s / 3600.0).astype(float)
        usable = np.maximum(self.stalls - blocked, 0.0)
        waiting = self.queue + arrivals
        enter = np.minimum(waiting, np.maximum(usable - self.occupied, 0.0))
        # People who cannot get in wait a little and then go elsewhere.
        self.queue = np.floor((waiting - enter) * 0.5)
        self.occupied += enter
        self.occupied -= self._rng.binomial(
            self.occupied.astype(int), 1 - np.exp(-dt_s / MEAN_STAY_S)
        )
        self.footfall_total += arrivals
        self.water_total_l += enter * 7.0 + leak * LEAK_L_PER_S * dt_s
        self._odour(enter, blocked, fan, dt_s)
        self._consumables(enter, at_s, dt_s)

    def _odour(self, uses: np.ndarray, blocked: np.ndarray, fan: np.ndarray, dt_s: float) -> None:
        """A well-mixed room: residue releases gas, ventilation carries it out."""
        self._residue += np.outer([NH3_MG_PER_USE, H2S_MG_PER_USE], uses)
        released = self._residue * (1.0 - np.exp(-dt_s / RELEASE_S))
        self._residue -= released
        hours = dt_s / 3600.0
        released[0] += (BLOCKED_NH3_MG_H * blocked + BACKGROUND_NH3_MG_H * self.stalls) * hours
        released[1] += BLOCKED_H2S_MG_H * blocked * hours
        ach = self.air_changes * np.where(fan, 0.1, 1.0)
        keep = np.exp(-ach * hours)
        # Exact for a constant source over the step: C' = C k + S/(Q) (1 - k), Q = ach V.
        gain = (1.0 - keep) / (ach * hours * self.volume_m3)
        self.nh3 = self.nh3 * keep + released[0] * gain
        self.h2s = self.h2s * keep + released[1] * gain

    def _consumables(self, uses: np.ndarray, at_s: float, dt_s: float) -> None:
        self.paper = np.maximum(self.paper - uses * 100.0 / (self.stalls * 180.0), 0.0)
        self.soap = np.maximum(self.soap - uses * 0.7 * 100.0 / (self.stalls * 300.0), 0.0)
        if crossed(at_s - dt_s, at_s, CLEANER_HOURS):
            self._residue *= CLEANED_KEEP
            self.paper[:] = 100.0
            self.soap[:] = 100.0

    def record(self, at_s: float) -> None:
        """Note the ground truth at tick ``at_s``: odour above the class's GB/T 17217 limits."""
        self._odour_nh3.update(at_s, self.nh3 > self.nh3_limit, self.nh3)
        self._odour_h2s.update(at_s, self.h2s > H2S_LIMIT_MGM3, self.h2s)

    def truth_events(self, until_s: float) -> list[TruthEvent]:
        """Odour above the limits per toilet: ``odour_nh3``/``odour_h2s``, detail ``class=N``."""
        devices = [(d.device_id, d.district) for d in self.devices]
        details = [f"class={k}" for k in self.toilet_class.tolist()]
        kind = DeviceKind.TOILET
        return spans_to_events(
            self._odour_nh3.spans(until_s), "odour_nh3", devices, kind, details
        ) + spans_to_events(self._odour_h2s.spans(until_s), "odour_h2s", devices, kind, details)

    def values(self, at_s: float, metrics: Sequence[str]) -> np.ndarray:
        """True values now; ``footfall_count`` and ``water_l`` are running totals (see drivers)."""
        h = local_hour(at_s)
        temp = 20.0 + 5.0 * np.sin(2 * np.pi * (h - 9.0) / 24.0) + 0.3 * self.occupied
        humid = 65.0 + 8.0 * np.cos(2 * np.pi * (h - 4.0) / 24.0) + 1.5 * self.occupied
        columns = {
            "occupied_stalls": self.occupied,
            "footfall_count": self.footfall_total,
            "nh3_mgm3": self.nh3,
            "h2s_mgm3": self.h2s,
            "paper_pct": self.paper,
            "soap_pct": self.soap,
            "water_l": self.water_total_l,
            "temperature_c": temp,
            "humidity_pct": np.clip(humid, 0.0, 100.0),
            "fault_code": self.fault_code,
            "battery_v": self._battery,
            "rssi_dbm": self._rssi,
        }
        return np.column_stack([np.broadcast_to(columns[m], self.occupied.shape) for m in metrics])
