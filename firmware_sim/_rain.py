"""Rainfall: GB 50014 storm intensity, Chicago design hyetographs and a typhoon rainstorm.

The storm-intensity parameters below are ILLUSTRATIVE, of the size published for Zhejiang coastal
cities; they are not Taizhou's official formula. Intensities are returned in mm/h per time step;
a storm's *peak* is its highest one-step (5-minute) mean intensity and its *wettest hour* the most
rain in 12 consecutive 5-minute steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

A1: Final = 11.6
C: Final = 0.76
B_MIN: Final = 10.2
N: Final = 0.72
LSHA_TO_MMH: Final = 0.36
"""1 L/(s·hm²) is 0.36 mm/h."""
BAND_CENTRES: Final = (0.3, 0.5, 0.7)
"""Where the spiral rain bands pass, as fractions of the storm."""
BAND_SCALES: Final = (0.7, 1.0, 0.8)
BAND_SIGMAS_MIN: Final = (25.0, 15.0, 10.0)
"""A rain band's width (Gaussian sigma): about 1.5 hours of heavy rain, less in a short storm."""
BURST_SIGMA_MIN: Final = 5.0
"""The convective burst inside the main band: its 5-minute peak."""
DEFAULT_HOUR_RATIO: Final = 0.6
"""Wettest hour over peak 5-minute intensity when a typhoon does not give its wettest hour."""


def storm_intensity_lsha(return_period_y: float, duration_min: float) -> float:
    """GB 50014: q = 167·A1·(1 + C·lg P) / (t + b)^n, in L/(s·hm²)."""
    if return_period_y <= 0 or duration_min <= 0:
        raise ValueError("return period and duration must be positive")
    return float(167.0 * A1 * (1.0 + C * math.log10(return_period_y)) / (duration_min + B_MIN) ** N)


def _mean_mm_per_min(return_period_y: float, window_min: float) -> float:
    if window_min <= 0:
        return 0.0
    return storm_intensity_lsha(return_period_y, window_min) * LSHA_TO_MMH / 60.0


def _window_sums(series: np.ndarray, steps: int) -> np.ndarray:
    if series.size < steps:
        return np.array([float(series.sum())])
    return np.convolve(series, np.ones(steps), mode="valid")


def peak_mmh(series: np.ndarray) -> float:
    """The highest mean intensity over one step (5 minutes in the simulator), mm/h."""
    return float(series.max()) if series.size else 0.0


def wettest_mm(series: np.ndarray, step_min: float, window_min: float = 60.0) -> float:
    """The depth of the wettest ``window_min`` (whole steps) of ``series``, mm."""
    steps = max(1, round(window_min / step_min))
    return float(_window_sums(series, steps).max()) * step_min / 60.0 if series.size else 0.0


def chicago_mmh(
    return_period_y: float, duration_min: float, peak_ratio: float, step_min: float
) -> np.ndarray:
    """A Chicago (Keifer-Chu) hyetograph: mean intensity per step, mm/h.

    Built from the cumulative depth, so that every window around the peak holds exactly the
    depth the intensity formula gives for that window's length. The step grid is aligned so that
    one step is the peak window: the peak step's intensity is the formula's for one step. The
    first step may begin up to one step before the storm (holding only the storm's first minutes).
    """
    if not 0.0 < peak_ratio < 1.0:
        raise ValueError(f"peak_ratio must be in (0, 1), got {peak_ratio}")
    t_peak = peak_ratio * duration_min
    f_peak = peak_ratio * _mean_mm_per_min(return_period_y, duration_min) * duration_min

    def cumulative(t: float) -> float:
        t = min(max(t, 0.0), duration_min)
        if t <= t_peak:
            window = (t_peak - t) / peak_ratio
            return f_peak - peak_ratio * _mean_mm_per_min(return_period_y, window) * window
        window = (t - t_peak) / (1 - peak_ratio)
        return f_peak + (1 - peak_ratio) * _mean_mm_per_min(return_period_y, window) * window

    first = t_peak - peak_ratio * step_min
    first -= step_min * math.ceil(first / step_min - 1e-9)
    edges = np.arange(first, duration_min + step_min - 1e-9, step_min)
    depth = np.array([cumulative(float(t)) for t in edges])
    return np.diff(depth) / step_min * 60.0


@dataclass(frozen=True, slots=True)
class _TyphoonShape:
    envelope: np.ndarray
    bands: np.ndarray
    burst: np.ndarray
    centre: int


def _typhoon_shape(
    steps: int, step_min: float, seed: int, band_sigma_min: float, noise: float
) -> _TyphoonShape:
    rng = np.random.default_rng(seed)
    t = (np.arange(steps) + 0.5) / steps
    envelope = np.sin(np.pi * t) ** 2 * rng.lognormal(0.0, noise, steps)
    k = np.arange(steps)
    centres = [int(steps * c) for c in BAND_CENTRES]
    width = band_sigma_min / step_min
    bands = sum(
        scale * np.exp(-0.5 * ((k - c) / width) ** 2)
        for c, scale in zip(centres, BAND_SCALES, strict=True)
    )
    main = centres[int(np.argmax(BAND_SCALES))]
    burst = np.exp(-0.5 * ((k - main) / (BURST_SIGMA_MIN / step_min)) ** 2)
    return _TyphoonShape(envelope, np.asarray(bands, dtype=float), burst, main)


def typhoon_mmh(
    duration_h: float,
    total_mm: float,
    peak_mm_h: float,
    step_min: float,
    seed: int,
    *,
    wettest_hour_mm: float | None = None,
) -> np.ndarray:
    """A typhoon rainstorm: a long envelope, three spiral rain bands and a burst, mm/h per step.

    The parts are weighted so that the series holds exactly ``total_mm``, its wettest hour
    (whole steps) ``wettest_hour_mm`` (default ``DEFAULT_HOUR_RATIO`` × ``peak_mm_h``) and its
    highest one-step intensity ``peak_mm_h``; ``ValueError`` if those cannot go together.
    """
    hour_mm = DEFAULT_HOUR_RATIO * peak_mm_h if wettest_hour_mm is None else wettest_hour_mm
    steps = max(1, round(duration_h * 60 / step_min))
    per_hour = max(1, round(60 / step_min))
    check_typhoon(duration_h, total_mm, peak_mm_h, hour_mm)
    targets = np.array([total_mm, hour_mm, peak_mm_h * step_min / 60])
    # Narrower bands and a calmer envelope when a short storm cannot hold wide, ragged ones.
    for noise in (0.25, 0.1, 0.0):
        for sigma in BAND_SIGMAS_MIN:
            shape = _typhoon_shape(steps, step_min, seed, sigma, noise)
            series = _fit(shape, per_hour, step_min, targets)
            if series is not None:
                return series
    raise ValueError(
        f"typhoon: total {total_mm} mm, wettest hour {hour_mm} mm and peak {peak_mm_h} mm/h do "
        f"not fit in {duration_h} h (want a storm whose peak 5 minutes stand above its wettest "
        "hour, and that hour above the storm's mean)"
    )


def _fit(
    shape: _TyphoonShape, per_hour: int, step_min: float, targets: np.ndarray
) -> np.ndarray | None:
    """Weights of envelope, bands and burst holding (total, wettest hour, peak), or None."""
    parts = np.vstack([shape.envelope, shape.bands, shape.burst])
    start = max(0, shape.centre - per_hour // 2)
    series = None
    for _ in range(4):
        window = slice(start, start + per_hour)
        lhs = np.array([parts.sum(axis=1), parts[:, window].sum(axis=1), parts[:, shape.centre]])
        weights = np.linalg.solve(lhs, targets * 60 / step_min)
        if np.any(weights < 0):
            return None
        series = np.asarray(weights @ parts, dtype=float)
        best = int(np.argmax(_window_sums(series, per_hour)))
        if best == start:
            break
        start = best
    return series


def check_typhoon(duration_h: float, total_mm: float, peak_mm_h: float, hour_mm: float) -> None:
    """``ValueError`` unless mean intensity < wettest hour < peak and the total."""
    if not total_mm / duration_h < hour_mm < min(peak_mm_h, total_mm):
        raise ValueError(
            f"typhoon: want mean intensity ({total_mm / duration_h:.1f} mm/h) < wettest hour "
            f"({hour_mm:.1f} mm) < min(peak {peak_mm_h:.1f} mm/h, total {total_mm:.1f} mm)"
        )
