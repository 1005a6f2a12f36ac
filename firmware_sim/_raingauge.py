"""Rain gauges (雨量站): tipping-bucket stations reading the same rain field that drives SWMM.

``rain_mmh`` is the mean intensity over the last tick (the report interval), ``rain_day_mm`` the
depth since local midnight (Asia/Shanghai); both come from :class:`RainField` at the gauge's own
position, so a gauge and the subcatchments around it see one storm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from firmware_sim._common import LOCAL_OFFSET_S
from firmware_sim._rainfield import RainField, city_xy
from firmware_sim._scenario import Scenario
from telemetry_core.registry import Device


class RainGaugeModel:
    """Vectorised rain-gauge state for every rain gauge of a fleet."""

    def __init__(
        self,
        devices: Sequence[Device],
        scenario: Scenario,
        seed: int,
        start_s: float,
        tick_s: float,
    ) -> None:
        self.devices = devices
        self.field = RainField(scenario, seed)
        self._start_s, self._tick_s = start_s, tick_s
        xy = np.array([city_xy(d.lat, d.lon) for d in devices]).reshape(-1, 2)
        self.x_m, self.y_m = xy[:, 0], xy[:, 1]
        rng = np.random.default_rng([seed, 13])
        self._battery0 = rng.uniform(3.5, 3.65, len(devices))
        self._rssi0 = rng.normal(-80.0, 6.0, len(devices))

    def depth_mm(self, rel_s: float) -> np.ndarray:
        """Rain each gauge has caught from the simulation's start until ``rel_s``."""
        return self.field.depth_mm(self.x_m, self.y_m, rel_s)

    def values(self, rel_s: float, metrics: Sequence[str]) -> np.ndarray:
        """True values at ``rel_s`` seconds from the start, columns in ``metrics`` order."""
        now = self.depth_mm(rel_s)
        before = self.depth_mm(rel_s - self._tick_s)
        since_midnight_s = (self._start_s + rel_s + LOCAL_OFFSET_S) % 86_400.0
        midnight = self.depth_mm(rel_s - since_midnight_s)
        days = rel_s / 86_400.0
        columns = {
            "rain_mmh": (now - before) * 3600.0 / self._tick_s,
            "rain_day_mm": now - midnight,
            "battery_v": self._battery0 - 0.002 * days,
            "rssi_dbm": self._rssi0,
        }
        return np.column_stack([columns[m] for m in metrics])
