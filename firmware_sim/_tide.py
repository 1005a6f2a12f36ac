"""Water levels at the outfalls: a semi-diurnal tide by district plus the scenario's storm surge."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from firmware_sim._geo import District
from firmware_sim._scenario import StormSurge

M2_PERIOD_S: Final = 12.42 * 3600.0
"""The principal lunar semi-diurnal tide."""
MEAN_SEA_LEVEL_M: Final = 0.0


def surge_m(surge: StormSurge | None, rel_s: np.ndarray) -> np.ndarray:
    """The surge at ``rel_s`` seconds from the scenario's start: sin² over its duration."""
    if surge is None:
        return np.zeros(np.shape(rel_s))
    half = surge.duration_h * 1800.0
    phase = (np.asarray(rel_s) - surge.peak_h * 3600.0) / half
    return np.where(np.abs(phase) < 1, surge.peak_m * np.cos(phase * math.pi / 2) ** 2, 0.0)


def outfall_stage_m(
    district: District, surge: StormSurge | None, start_s: float, rel_s: np.ndarray
) -> np.ndarray:
    """Water elevation (m on the datum) at the district's outfalls; only for coastal districts."""
    at_s = start_s + np.asarray(rel_s)
    tide = district.tide_amplitude_m * np.cos(
        2 * math.pi * (at_s - district.tide_hw_h * 3600.0) / M2_PERIOD_S
    )
    return np.asarray(MEAN_SEA_LEVEL_M + tide + surge_m(surge, rel_s))
