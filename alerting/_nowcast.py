"""A rain nowcast from the gauges alone: rain bands move, so a gauge up-wind has already measured
what a gauge down-wind will get.

Every ``REFRESH_S`` of event time, for each gauge, the estimator looks through the last
``WINDOW_S`` of the storm for the other gauge and the lag (``ahead`` to ``MAX_LAG_S``) whose
rain, shifted by the lag, correlates best with this gauge's (Pearson, on one-minute bins), and
keeps it when the correlation is at least ``MIN_CORR``, with the ratio of the two gauges' depths
as a scale. The forecast for ``ahead`` seconds later is then the up-wind gauge's measured rain,
``lag - ahead`` seconds ago, times the scale; without such a match it is persistence (the
gauge's own recent rain). The estimate depends only on the readings up to its refresh epoch (a
multiple of ``REFRESH_S``), so a replay or a restart from a checkpoint gives the same answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

REFRESH_S: Final = 600.0
WINDOW_S: Final = 150 * 60.0
"""The storm so far that the lag is learnt on: two and a half hours."""
MAX_LAG_S: Final = 90 * 60.0
"""Rain bands crossing a city at 20-40 km/h take about this long over 30-50 km."""
BIN_S: Final = 60.0
MIN_CORR: Final = 0.8
MIN_DEPTH_MM: Final = 5.0
"""Less rain than this in the window: nothing to learn a lag from."""

Rain = Mapping[str, deque[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class Match:
    """The up-wind gauge whose rain a gauge gets ``lag_s`` later, times ``scale``."""

    source: str
    lag_s: float
    scale: float
    corr: float


def binned(points: Sequence[tuple[float, float]], end_s: float, n: int) -> np.ndarray:
    """Mean intensity per one-minute bin over the ``n`` bins ending at ``end_s``; a bin
    without a reading holds the previous one's value (0 before the first)."""
    total, count = np.zeros(n), np.zeros(n)
    start = end_s - n * BIN_S
    for ts, mmh in points:
        k = int((ts - start) // BIN_S) if ts > start else -1
        if 0 <= k < n and ts <= end_s:
            total[k] += mmh
            count[k] += 1
    out = np.zeros(n)
    last = 0.0
    for k in range(n):
        last = total[k] / count[k] if count[k] else last
        out[k] = last
    return out


def best_matches(series: Mapping[str, np.ndarray], min_lag: int, window: int) -> dict[str, Match]:
    """For each gauge, the best-correlated other gauge and lag (in bins, ``min_lag`` to the
    most the series allow), from ``series`` of equal length ending at the same time."""
    names = sorted(series)
    out: dict[str, Match] = {}
    for h in names:
        y = series[h][-window:]
        if y.sum() * BIN_S / 3600.0 < MIN_DEPTH_MM or y.std() == 0:
            continue
        yc = (y - y.mean()) / y.std()
        best: Match | None = None
        for g in names:
            if g == h:
                continue
            match = _best_lag(series[g], yc, y.sum(), min_lag, window)
            if match is not None and (best is None or match[1] > best.corr):
                lag, corr, scale = match
                best = Match(g, lag * BIN_S, scale, corr)
        if best is not None:
            out[h] = best
    return out


def _best_lag(
    x: np.ndarray, yc: np.ndarray, y_sum: float, min_lag: int, window: int
) -> tuple[int, float, float] | None:
    n = x.size
    max_lag = n - window
    if max_lag < min_lag:
        return None
    lags = np.arange(min_lag, max_lag + 1)
    rows = np.lib.stride_tricks.sliding_window_view(x, window)[n - window - lags]
    std = rows.std(axis=1)
    ok = std > 0
    if not ok.any():
        return None
    corr = np.full(lags.size, -1.0)
    centred = rows[ok] - rows[ok].mean(axis=1, keepdims=True)
    corr[ok] = centred @ yc / (window * std[ok])
    k = int(np.argmax(corr))
    if corr[k] < MIN_CORR or rows[k].sum() <= 0:
        return None
    return int(lags[k]), float(corr[k]), float(y_sum / rows[k].sum())


def window_mean(points: Sequence[tuple[float, float]], end_s: float, over_s: float) -> float | None:
    """Mean of the readings in ``(end_s - over_s, end_s]``; ``None`` without one."""
    total, n = 0.0, 0
    for ts, mmh in reversed(points):
        if ts <= end_s - over_s:
            break
        if ts <= end_s:
            total += mmh
            n += 1
    return total / n if n else None


@dataclass(slots=True)
class Nowcast:
    """The gauges' matches, re-estimated each ``REFRESH_S``; forecasts cached per minute."""

    epoch_s: dict[float, float] = field(default_factory=dict)
    matches: dict[float, dict[str, Match]] = field(default_factory=dict)
    cache: dict[tuple[str, float, float], tuple[float, float | None]] = field(default_factory=dict)

    def matches_at(self, rain: Rain, t: float, ahead_s: float) -> dict[str, Match]:
        """The matches (lags of at least ``ahead_s``) learnt up to the last refresh epoch."""
        epoch = t // REFRESH_S * REFRESH_S
        if self.epoch_s.get(ahead_s) != epoch:
            n = int((WINDOW_S + MAX_LAG_S) // BIN_S)
            series = {g: binned(p, epoch, n) for g, p in rain.items() if p}
            min_lag = int(np.ceil(ahead_s / BIN_S))
            self.matches[ahead_s] = best_matches(series, min_lag, int(WINDOW_S // BIN_S))
            self.epoch_s[ahead_s] = epoch
        return self.matches[ahead_s]

    def forecast_mmh(
        self, rain: Rain, gauge: str, t: float, ahead_s: float, over_s: float
    ) -> float | None:
        """The mean rain at ``gauge`` over ``over_s`` ending ``ahead_s`` after ``t``."""
        key = (gauge, ahead_s, over_s)
        hit = self.cache.get(key)
        if hit is not None and hit[0] == t:
            return hit[1]
        match = self.matches_at(rain, t, ahead_s).get(gauge)
        if match is None:
            value = window_mean(rain.get(gauge, ()), t, over_s)
        else:
            up = window_mean(rain.get(match.source, ()), t + ahead_s - match.lag_s, over_s)
            value = None if up is None else up * match.scale
        self.cache[key] = (t, value)
        return value


_M_PER_DEG: Final = 111_320.0
MIN_COHERENT: Final = 3
"""Matches needed to fit a storm's motion (two unknowns and one to check them)."""
MAX_SCALE: Final = 3.0


def coherent(
    matches: Mapping[str, Match], positions: Mapping[str, tuple[float, float]]
) -> dict[str, Match]:
    """The matches one moving storm explains. A rain field moving at one velocity ``v`` reaches
    a gauge ``d`` metres down-wind of another ``d·s`` seconds later, ``s = v/|v|²`` (the
    slowness vector), so every true match's lag is linear in the offset between its gauges. A
    periodic rain band also makes spurious matches (a gauge "following" one down-wind of it, a
    neighbour at a multiple of the band's period); they fit no common motion. Every pair of
    matches gives an ``s`` (two equations, two unknowns); the one that the most matches fit
    (each lag within five minutes or 15% of it; ties to the higher summed correlation) wins,
    and its fitting matches are kept. A match that scales its source's rain by more than
    ``MAX_SCALE`` (or less than its inverse) is dropped first: one storm does not rain three
    times as hard a few kilometres on. Fewer than ``MIN_COHERENT`` fitting matches: none."""
    keep = {
        g: m for g, m in matches.items()
        if g in positions and m.source in positions and 1 / MAX_SCALE <= m.scale <= MAX_SCALE
    }  # fmt: skip
    if len(keep) < MIN_COHERENT:
        return {}
    names = list(keep)
    offsets = np.array([_offset_m(positions[keep[g].source], positions[g]) for g in names])
    lags = np.array([keep[g].lag_s for g in names])
    corr = np.array([keep[g].corr for g in names])
    tolerance = np.maximum(300.0, 0.15 * lags)
    best: tuple[int, float] = (0, 0.0)
    chosen = np.zeros(len(names), dtype=bool)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            pair = offsets[[a, b]]
            if abs(np.linalg.det(pair)) < 1e3:
                continue  # (nearly) parallel offsets fix no direction
            slowness = np.linalg.solve(pair, lags[[a, b]])
            fits = np.abs(offsets @ slowness - lags) <= tolerance
            score = (int(fits.sum()), float(corr[fits].sum()))
            if score > best:
                best, chosen = score, fits
    if best[0] < MIN_COHERENT:
        return {}
    return {g: keep[g] for g, ok in zip(names, chosen, strict=True) if ok}


def _offset_m(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """East and north metres from ``a`` to ``b`` (lat, lon; flat earth over a city)."""
    lat0 = np.radians((a[0] + b[0]) / 2)
    return ((b[1] - a[1]) * _M_PER_DEG * float(np.cos(lat0)), (b[0] - a[0]) * _M_PER_DEG)
