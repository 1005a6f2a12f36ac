"""Rainfall: GB 50014 storm intensity, Chicago design hyetographs and a typhoon rainstorm.

The storm-intensity parameters below are ILLUSTRATIVE, of the size published for Zhejiang coastal
cities; they are not Taizhou's official formula. Intensities are returned in mm/h per time step.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

A1: Final = 11.6
C: Final = 0.76
B_MIN: Final = 10.2
N: Final = 0.72
LSHA_TO_MMH: Final = 0.36
"""1 L/(s·hm²) is 0.36 mm/h."""


def storm_intensity_lsha(return_period_y: float, duration_min: float) -> float:
    """GB 50014: q = 167·A1·(1 + C·lg P) / (t + b)^n, in L/(s·hm²)."""
    if return_period_y <= 0 or duration_min <= 0:
        raise ValueError("return period and duration must be positive")
    return float(167.0 * A1 * (1.0 + C * math.log10(return_period_y)) / (duration_min + B_MIN) ** N)


def _mean_mm_per_min(return_period_y: float, window_min: float) -> float:
    if window_min <= 0:
        return 0.0
    return storm_intensity_lsha(return_period_y, window_min) * LSHA_TO_MMH / 60.0


def chicago_mmh(
    return_period_y: float, duration_min: float, peak_ratio: float, step_min: float
) -> np.ndarray:
    """A Chicago (Keifer-Chu) hyetograph: mean intensity per step, mm/h.

    Built from the cumulative depth, so that every window around the peak holds exactly the
    depth the intensity formula gives for that window's length.
    """
    if not 0.0 < peak_ratio < 1.0:
        raise ValueError(f"peak_ratio must be in (0, 1), got {peak_ratio}")
    t_peak = peak_ratio * duration_min
    f_peak = peak_ratio * _mean_mm_per_min(return_period_y, duration_min) * duration_min

    def cumulative(t: float) -> float:
        if t <= t_peak:
            window = (t_peak - t) / peak_ratio
            return f_peak - peak_ratio * _mean_mm_per_min(return_period_y, window) * window
        window = (t - t_peak) / (1 - peak_ratio)
        return f_peak + (1 - peak_ratio) * _mean_mm_per_min(return_period_y, window) * window

    edges = np.arange(0.0, duration_min + step_min / 2, step_min)
    depth = np.array([cumulative(float(t)) for t in edges])
    return np.diff(depth) / step_min * 60.0


def typhoon_mmh(
    duration_h: float, total_mm: float, peak_mm_h: float, step_min: float, seed: int
) -> np.ndarray:
    """A typhoon rainstorm: a long envelope carrying three spiral rain bands, mm/h per step.

    The total is matched exactly; the peak approximately (bands are scaled to ``peak_mm_h``).
    """
    steps = max(1, round(duration_h * 60 / step_min))
    t = (np.arange(steps) + 0.5) / steps
    envelope = np.sin(np.pi * t) ** 2
    band_width = 0.9 / duration_h  # about 55 minutes, as a fraction of the storm
    bands = sum(
        np.exp(-0.5 * ((t - centre) / band_width) ** 2) * scale
        for centre, scale in ((0.35, 0.7), (0.55, 1.0), (0.72, 0.8))
    )
    rng = np.random.default_rng(seed)
    bands = peak_mm_h * bands * rng.lognormal(0.0, 0.15, steps)
    hours = step_min / 60
    rest = total_mm - float(bands.sum()) * hours
    base = max(0.0, rest / (float(envelope.sum()) * hours))
    series = base * envelope * rng.lognormal(0.0, 0.25, steps) + bands
    return np.asarray(series * (total_mm / (float(series.sum()) * hours)), dtype=float)
