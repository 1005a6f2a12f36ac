"""Imperfect sensors: baseline noise plus scenario faults, applied to a kind's true values.

Randomness is drawn from a generator seeded by (seed, kind, tick), so a reading at a given tick is
the same however often, and in whatever order, the fleet is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from firmware_sim._common import active, select
from firmware_sim._scenario import Scenario, SensorFault
from telemetry_core.kinds import DeviceKind, kind_spec
from telemetry_core.registry import Device

SCALE = {
    "level_m": 0.05, "fill_ratio": 0.05, "flow_m3s": 0.02, "velocity_ms": 0.05, "cod_mgl": 10.0,
    "nh3n_mgl": 1.0, "battery_v": 0.05, "rssi_dbm": 2.0, "occupied_stalls": 1.0,
    "nh3_mgm3": 0.05, "h2s_mgm3": 0.002, "paper_pct": 1.0, "soap_pct": 1.0, "temperature_c": 0.5,
    "humidity_pct": 1.0, "weight_kg": 5.0, "fill_kitchen_pct": 2.0, "fill_recyclable_pct": 2.0,
    "fill_hazardous_pct": 2.0, "fill_other_pct": 2.0, "rain_mmh": 1.0, "rain_day_mm": 0.2,
}  # fmt: skip
"""A typical sensor resolution per metric: baseline noise is a tenth of it, faults multiples."""
REPORTED_FRACTION = 0.01
"""Readings are reported to a hundredth of the typical resolution: far below the noise, and a
short number on the wire rather than seventeen digits."""
UNTOUCHED = frozenset({"footfall_count", "water_l", "fault_code", "rain_mmh", "rain_day_mm"})
"""Counters, status codes and tipping-bucket counts are digital: no analogue noise or drift."""
DEFAULT_METRIC = {
    DeviceKind.DRAIN: "level_m",
    DeviceKind.TOILET: "nh3_mgm3",
    DeviceKind.GARBAGE: "fill_other_pct",
    DeviceKind.RAIN: "rain_mmh",
}


@dataclass(slots=True)
class _Active:
    spec: SensorFault
    mask: np.ndarray
    column: int
    frozen: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    """What the sensors of one kind report at one tick."""

    values: np.ndarray  # (n, m) floats
    missing: np.ndarray  # (n, m) bool: metric left out of the reading
    failed: np.ndarray  # (n,) bool: the whole device read fails (DriverError)


class SensorLayer:
    """Turns a kind's true values into sensor readings."""

    def __init__(
        self, kind: DeviceKind, devices: Sequence[Device], scenario: Scenario, seed: int
    ) -> None:
        self.kind = kind
        self.metrics = tuple(kind_spec(kind).metrics)
        self._scenario = scenario
        self._seed = seed
        self._kind_no = list(DeviceKind).index(kind)
        self._n = len(devices)
        spec = kind_spec(kind).metrics
        self._low = np.array([spec[m].low for m in self.metrics])
        self._high = np.array([spec[m].high for m in self.metrics])
        self._sigma = np.array(
            [0.0 if m in UNTOUCHED else 0.1 * SCALE.get(m, 0.0) for m in self.metrics]
        )
        # Analogue columns grouped by the decimals they are reported to; digital ones as they are.
        decimals = [
            max(0, math.ceil(-math.log10(REPORTED_FRACTION * SCALE.get(m, 0.1))))
            if m not in UNTOUCHED else None
            for m in self.metrics
        ]  # fmt: skip
        self._rounding = [
            (np.array([c for c, d in enumerate(decimals) if d == wanted]), 10.0**wanted)
            for wanted in sorted({d for d in decimals if d is not None})
        ]
        self.faults: list[_Active] = []
        for k, f in enumerate(scenario.sensor_faults):
            mask = select(f, devices, kind, f"sensor/{k}/{f.type}")
            if mask.any():
                self.faults.append(_Active(f, mask, self._column(f)))
        self.needs_observe = any(f.spec.type == "stuck" for f in self.faults)

    def _column(self, fault: SensorFault) -> int:
        metric = fault.metric or DEFAULT_METRIC[self.kind]
        if fault.type == "battery":
            metric = "battery_v"
        return self.metrics.index(metric)

    def observe(self, true: np.ndarray, rel_s: float) -> None:
        """Called every tick: a stuck sensor freezes at its value when the fault begins."""
        for f in self.faults:
            if f.spec.type != "stuck":
                continue
            if active(f.spec, rel_s, self._scenario.duration_s):
                if f.frozen is None:
                    f.frozen = true[:, f.column].copy()
            else:
                f.frozen = None

    def measure(self, true: np.ndarray, rel_s: float, tick: int) -> Measured:
        """The readings at ``tick`` (``rel_s`` seconds from the start) for true values ``true``."""
        rng = np.random.default_rng([self._seed, self._kind_no, tick])
        values = true.copy()
        if self._scenario.baseline_noise:
            values += rng.normal(0.0, 1.0, values.shape) * self._sigma
        missing = np.zeros(values.shape, dtype=bool)
        failed = np.zeros(values.shape[0], dtype=bool)
        for f in self.faults:
            if active(f.spec, rel_s, self._scenario.duration_s):
                self._apply(f, values=values, missing=missing, failed=failed, rel_s=rel_s, rng=rng)
        np.clip(values, self._low, self._high, out=values)
        failed_metric = np.isnan(values)  # a model's NaN is a read its sensor could not take
        if failed_metric.any():
            missing |= failed_metric
            values[failed_metric] = 0.0
        for cols, scale in self._rounding:
            # Dividing by an exact power of ten gives the double nearest the decimal.
            values[:, cols] = np.rint(values[:, cols] * scale) / scale
        return Measured(values, missing, failed)

    def _apply(
        self,
        f: _Active,
        *,
        values: np.ndarray,
        missing: np.ndarray,
        failed: np.ndarray,
        rel_s: float,
        rng: np.random.Generator,
    ) -> None:
        col, rows, spec = f.column, f.mask, f.spec
        scale = SCALE.get(self.metrics[col], 1.0) * spec.magnitude
        hours_in = ((rel_s % self._scenario.duration_s) - spec.start_h * 3600.0) / 3600.0
        hit = rows & (rng.random(rows.size) < spec.probability)
        match spec.type:
            case "noise":
                values[rows, col] += rng.normal(0.0, scale, int(rows.sum()))
            case "drift":
                values[rows, col] += scale * hours_in
            case "stuck" if f.frozen is not None:
                values[rows, col] = f.frozen[rows]
            case "spike":
                values[hit, col] += 20.0 * scale
            case "dropout" if spec.whole_device:
                failed |= hit
            case "dropout":
                missing[hit, col] = True
            case "battery":
                values[rows, col] -= 0.1 * spec.magnitude * hours_in
            case _:
                pass  # clock_skew changes no value: drivers expose it as clock_skew_s

    def clock_skew_s(self, rel_s: float) -> np.ndarray:
        """Per device, how far its clock runs ahead (seconds) at ``rel_s``."""
        skew = np.zeros(self._n)
        for f in self.faults:
            if f.spec.type == "clock_skew" and active(f.spec, rel_s, self._scenario.duration_s):
                skew[f.mask] += 60.0 * f.spec.magnitude
        return skew
