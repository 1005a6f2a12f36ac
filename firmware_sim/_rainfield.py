"""The rain field: the scenario's hyetograph, moved across the city and scaled by a smooth field.

The scenario's rain (``rain_series``) is what falls at the city's reference point. Elsewhere the
same storm arrives ``lag`` later (it moves at ``STORM_SPEED_MS`` from the south-east, as a typhoon
making landfall at Wenling does) and is scaled by a smooth random field (``SPATIAL_SPREAD`` either
way, wavelengths of 6-20 km), fixed per seed. Rain gauges read this field at their own position;
SWMM's rain gauges read it at the centre of each ``CELL_M`` square, and every subcatchment uses
the gauge of its square (the nearest cell centre), so the model and the gauges see one storm.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from firmware_sim._geo import DISTRICTS
from firmware_sim._rain import chicago_mmh, typhoon_mmh
from firmware_sim._scenario import DesignStorm, RainEvent, Scenario

RAIN_STEP_MIN: Final = 5
STEP_S: Final = 60.0 * RAIN_STEP_MIN
STORM_SPEED_MS: Final = 10.0
"""About 36 km/h: a typhoon's rain bands crossing the city."""
STORM_HEADING: Final = (-0.6, 0.8)
"""Unit vector (east, north) the storm moves along: towards the north-west."""
SPATIAL_SPREAD: Final = 0.25
CELL_M: Final = 1000.0
LAT0: Final = float(np.mean([d.lat for d in DISTRICTS.values()]))
LON0: Final = float(np.mean([d.lon for d in DISTRICTS.values()]))
M_PER_DEG: Final = 111_320.0


def event_mmh(event: RainEvent, seed: int) -> np.ndarray:
    """One rain event's hyetograph in mm/h, one value per 5 minutes from its start."""
    if isinstance(event, DesignStorm):
        return chicago_mmh(
            event.return_period_y, event.duration_min, event.peak_ratio, RAIN_STEP_MIN
        )
    return typhoon_mmh(
        event.duration_h, event.total_mm, event.peak_mm_h, RAIN_STEP_MIN, seed,
        wettest_hour_mm=event.wettest_hour_mm,
    )  # fmt: skip


def rain_series(scenario: Scenario, seed: int) -> np.ndarray:
    """The scenario's rainfall in mm/h at its reference point, one value per 5 minutes."""
    steps = int(np.ceil(scenario.duration_h * 60 / RAIN_STEP_MIN))
    rain = np.zeros(steps)
    for k, event in enumerate(scenario.rain):
        part = event_mmh(event, seed + k)
        begin = int(event.start_h * 60 / RAIN_STEP_MIN)
        part = part[: max(0, steps - begin)]
        rain[begin : begin + part.size] += part
    return rain


def city_xy(lat: float, lon: float) -> tuple[float, float]:
    """Metres east and north of the city's reference point."""
    return (lon - LON0) * M_PER_DEG * math.cos(math.radians(LAT0)), (lat - LAT0) * M_PER_DEG


class RainField:
    """Rain depth at any place and time of a scenario, deterministic per seed."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self._period_s = scenario.duration_s
        series = rain_series(scenario, seed)
        self._edges_s = np.arange(series.size + 1) * STEP_S
        self._cum_mm = np.concatenate([[0.0], np.cumsum(series) * STEP_S / 3600.0])
        rng = np.random.default_rng([seed, 7])
        self._waves = [
            (2 * math.pi / float(rng.uniform(6_000, 20_000)), float(rng.uniform(0, 2 * math.pi)),
             float(rng.uniform(0, 2 * math.pi)))
            for _ in range(3)
        ]  # fmt: skip

    @property
    def total_mm(self) -> float:
        """The scenario's depth at the reference point over one period."""
        return float(self._cum_mm[-1])

    def scale(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """The smooth spatial multiplier at (x, y): 1 ± ``SPATIAL_SPREAD``."""
        field = np.zeros(np.shape(x_m))
        for k, angle, phase in self._waves:
            field += np.cos(k * (np.cos(angle) * x_m + np.sin(angle) * y_m) + phase)
        return np.asarray(1.0 + SPATIAL_SPREAD * field / len(self._waves))

    def lag_s(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """How much later than at the reference point the storm arrives at (x, y)."""
        along = STORM_HEADING[0] * np.asarray(x_m) + STORM_HEADING[1] * np.asarray(y_m)
        return np.asarray(along / STORM_SPEED_MS)

    def depth_mm(self, x_m: np.ndarray, y_m: np.ndarray, rel_s: float) -> np.ndarray:
        """Rain fallen at (x, y) from the simulation's start until ``rel_s`` (all periods)."""
        periods, within = divmod(max(rel_s, 0.0), self._period_s)
        return np.asarray(self.scale(x_m, y_m) * (
            periods * self._period_depth(x_m, y_m) + self._in_period(x_m, y_m, within)
        ))  # fmt: skip

    def _in_period(self, x_m: np.ndarray, y_m: np.ndarray, within_s: float) -> np.ndarray:
        # Rain shifted past the period's end is lost, as in the (one-period) SWMM model.
        t = np.clip(within_s - self.lag_s(x_m, y_m), 0.0, self._edges_s[-1])
        return np.asarray(np.interp(t, self._edges_s, self._cum_mm))

    def _period_depth(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        return self._in_period(x_m, y_m, self._period_s)

    def intensity_mmh(self, x_m: float, y_m: float, steps: int) -> np.ndarray:
        """Mean intensity per 5-minute step at one place over one period (for SWMM)."""
        edges = np.arange(steps + 1) * STEP_S
        x, y = np.full(edges.size, x_m), np.full(edges.size, y_m)
        t = np.clip(edges - self.lag_s(x, y), 0.0, self._edges_s[-1])
        depth = np.interp(t, self._edges_s, self._cum_mm) * self.scale(x, y)
        return np.asarray(np.diff(depth) / STEP_S * 3600.0)


def cell_of(x_m: float, y_m: float) -> tuple[int, int]:
    """The ``CELL_M`` square holding (x, y)."""
    return math.floor(x_m / CELL_M), math.floor(y_m / CELL_M)


def cell_centre(cell: tuple[int, int]) -> tuple[float, float]:
    """The centre of a square, where its SWMM rain gauge reads the field."""
    return (cell[0] + 0.5) * CELL_M, (cell[1] + 0.5) * CELL_M
