"""Robust trend fits over a short window: rate of rise, and the time until a limit is reached.

Theil–Sen (the median of pairwise slopes) shrugs off a spike or two in the window, which a
least-squares line does not; the intercept is the median of ``y - slope * t``. Windows are short
(a few to a few dozen points), so the pairwise slopes are computed with numpy in one go.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Trend:
    """A fitted line: ``value(t) = level + rate_per_s * (t - t_last)``, at the last point."""

    level: float
    rate_per_s: float
    points: int

    def time_to(self, limit: float, *, rising: bool) -> float:
        """Seconds until the line reaches ``limit`` going up (``rising``) or down: 0 if it is
        already there, infinity if it is heading the other way."""
        if (self.level >= limit) if rising else (self.level <= limit):
            return 0.0
        if (self.rate_per_s <= 0) if rising else (self.rate_per_s >= 0):
            return math.inf
        return (limit - self.level) / self.rate_per_s


def theil_sen(history: deque[tuple[float, float]], now_s: float, window_s: float) -> Trend | None:
    """Fit the points of ``history`` (``(t_s, value)``, oldest first) within ``window_s``."""
    pts = [(t, v) for t, v in history if now_s - t <= window_s]
    n = len(pts)
    if n < 2:
        return None
    arr = np.asarray(pts, dtype=float)
    t, y = arr[:, 0] - arr[-1, 0], arr[:, 1]
    i, j = np.triu_indices(n, k=1)
    dt = t[j] - t[i]
    keep = dt > 0
    if not keep.any():
        return None
    slope = float(np.median((y[j] - y[i])[keep] / dt[keep]))
    level = float(np.median(y - slope * t))
    return Trend(level=level, rate_per_s=slope, points=n)


def points_within(history: deque[tuple[float, float]], now_s: float, window_s: float) -> int:
    """How many points of ``history`` fall within ``window_s`` before ``now_s``."""
    count = 0
    for t, _ in reversed(history):
        if now_s - t > window_s:
            break
        count += 1
    return count
