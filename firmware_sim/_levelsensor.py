"""What a drain node's level sensor makes of the water: turbulence, fouling, and a drowned head.

* **Turbulence.** The surface under a downward-looking ultrasonic head is rough in fast flow: noise
  of ``TURBULENCE_M_PER_MS`` × velocity (on top of the sensor layer's 5 mm baseline noise).
* **Fouling.** Grease, silt and cobwebs on the head make it read high by an offset growing at a
  device's own rate (0 to ``MAX_FOULING_M_PER_DAY``) until the next cleaning round, every 14 to 42
  days; a cleaning resets it. Labelled ``fault:fouling`` while the offset exceeds
  ``FOULING_LABEL_M`` (a few times the sensor's stated accuracy): about 13 % of sensors at a time.
* **Drowned head.** With water within ``DROWNED_M`` of the cover the head is under water: the read
  of ``level_m`` and ``fill_ratio`` fails (left out of the reading). Labelled ``fault:submerged``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from firmware_sim._events import TruthEvent
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device

TURBULENCE_M_PER_MS = 0.004
MAX_FOULING_M_PER_DAY = 0.002
FOULING_LABEL_M = 0.03
DROWNED_M = 0.05
DAY_S = 86_400.0


class LevelSensors:
    """Per-device fouling state and the level each drain device's sensor reports."""

    def __init__(self, devices: Sequence[Device], seed: int) -> None:
        self.devices = devices
        rng = np.random.default_rng([seed, 19])
        n = len(devices)
        self._seed = seed
        self.rate_m_per_day = rng.uniform(0.0, MAX_FOULING_M_PER_DAY, n)
        self.interval_days = rng.uniform(14.0, 42.0, n)
        self._age0_days = rng.uniform(0.0, 1.0, n) * self.interval_days

    def fouling_m(self, rel_s: float) -> np.ndarray:
        """Each sensor's fouling offset ``rel_s`` seconds after the start."""
        age = (self._age0_days + rel_s / DAY_S) % self.interval_days
        return np.asarray(self.rate_m_per_day * age)

    def measure(
        self, level_m: np.ndarray, velocity_ms: np.ndarray, depth_max_m: np.ndarray, rel_s: float
    ) -> np.ndarray:
        """The reported level; NaN (a failed read) where the water drowns the sensor head."""
        rng = np.random.default_rng([self._seed, 23, round(rel_s)])
        rough = rng.normal(0.0, 1.0, level_m.shape) * TURBULENCE_M_PER_MS * np.abs(velocity_ms)
        measured = level_m + self.fouling_m(rel_s) + rough
        return np.where(level_m >= depth_max_m - DROWNED_M, np.nan, measured)

    def fouling_events(self, start_s: float, until_s: float) -> list[TruthEvent]:
        """``fault:fouling`` spans: from when the offset passes the label until each cleaning."""
        events = []
        for i, d in enumerate(self.devices):
            rate, interval = float(self.rate_m_per_day[i]), float(self.interval_days[i])
            if rate * interval <= FOULING_LABEL_M:
                continue
            onset_age = FOULING_LABEL_M / rate
            cleaned = start_s + (interval - float(self._age0_days[i])) * DAY_S  # first cleaning
            cycle = cleaned - interval * DAY_S
            while cycle < until_s:
                a, b = (
                    max(cycle + onset_age * DAY_S, start_s),
                    min(cycle + interval * DAY_S, until_s),
                )
                if a < b:
                    detail = f"metric=level_m rate_m_per_day={rate:.4f}"
                    events.append(_event(d, "fault:fouling", a, b, detail))
                cycle += interval * DAY_S
        return events


def _event(device: Device, label: str, a: float, b: float, detail: str) -> TruthEvent:
    return TruthEvent(label=label, unit=device.device_id, device_ids=(device.device_id,),
                      district=device.district, kind=DeviceKind.DRAIN.value, onset_s=a, end_s=b,
                      detail=detail)  # fmt: skip


def submerged_events(
    devices: Sequence[Device], spans: Sequence[Sequence[tuple[float, float]]]
) -> list[TruthEvent]:
    """``fault:submerged`` events from each device's absolute (start, end) spans."""
    return [
        _event(d, "fault:submerged", a, b, "metric=level_m")
        for d, device_spans in zip(devices, spans, strict=True)
        for a, b in device_spans
    ]
