"""Edge processing: median spike rejection and spike test, report by exception, threshold watch.

All three are pure state machines fed one sample at a time, so they are tested without clocks
or brokers.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from edge_agent._config import AgentConfig, Threshold


class MedianFilter:
    """Per-metric running median over the last ``window`` raw samples, and a spike test.

    A spike shorter than half the window never reaches the output. The price is latency: a real
    step shows after ``window // 2 + 1`` samples, which is why thresholds and deadbands see the
    filtered value only when the window is above 1.

    A metric is reported as ``spike_filtered`` when :class:`SpikeTest` confirmed that the median
    removed a spike: at the sample where the metric came back (see there). A window of 1 filters
    nothing and flags nothing.
    """

    def __init__(
        self,
        window: int,
        tolerances: Mapping[str, float] | None = None,
        floors: Mapping[str, float] | None = None,
    ) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"median window must be odd and >= 1, got {window}")
        self._window = window
        self._tolerances = dict(tolerances or {})
        self._floors = dict(floors or {})
        self._history: dict[str, deque[float]] = {}
        self._tests: dict[str, SpikeTest] = {}

    def update(self, raw: Mapping[str, float]) -> dict[str, float]:
        """Add one sample; the filtered value of every metric in it."""
        return self.update_flagged(raw)[0]

    def update_flagged(self, raw: Mapping[str, float]) -> tuple[dict[str, float], frozenset[str]]:
        """Add one sample; the filtered values and the metrics whose spike was just confirmed."""
        out: dict[str, float] = {}
        spikes: set[str] = set()
        for metric, value in raw.items():
            history = self._history.setdefault(metric, deque(maxlen=self._window))
            history.append(value)
            out[metric] = statistics.median(history)
            if self._window > 1 and self._test(metric).update(value):
                spikes.add(metric)
        return out, frozenset(spikes)

    def _test(self, metric: str) -> SpikeTest:
        test = self._tests.get(metric)
        if test is None:
            test = SpikeTest(
                max_run=self._window // 2,
                floor=self._floors.get(metric, 0.0),
                tolerance=self._tolerances.get(metric, 0.0),
            )
            self._tests[metric] = test
        return test


class SpikeTest:
    """A Hampel test around a robust trend, with a floor and a return condition.

    Fed one raw value at a time. The reference is the last ``HISTORY`` ordinary samples
    projected to now along their Theil-Sen slope (the median of the pairwise slopes, so a ramp
    does not read as a deviation and one outlier does not tilt it); its centre is their median
    and its scale their median absolute deviation (times 1.4826, a standard deviation for
    Gaussian noise), never below ``floor``: the metric's resolution, since a handful of quiet
    samples can deviate by almost nothing and ordinary noise would look like spikes. A value
    further than ``K`` scales (and than ``tolerance``) from the centre starts a run of outliers;
    the run is a **spike** only if the metric comes back within ``K`` scales of the trend after
    at most ``max_run`` samples (what the median hides). A run that lasts longer is a real
    change, and its values become the history.
    """

    HISTORY = 15
    MIN_HISTORY = 5
    K = 6.0
    MAD_TO_SIGMA = 1.4826
    REFRESH = 10
    """Samples a reference is reused for while values stay well inside it (it costs ~100
    slopes to make; a ramp keeps its slope, so a reference a few samples old still fits)."""

    def __init__(self, max_run: int, floor: float, tolerance: float = 0.0) -> None:
        self._max_run = max(1, max_run)
        self._floor = floor
        self._tolerance = tolerance
        self._history: deque[tuple[int, float]] = deque(maxlen=self.HISTORY)
        self._index = 0
        self._run: list[tuple[int, float]] = []
        self._trend = (0, 0.0, 0.0)  # (index, centre there, slope)
        self._limit = 0.0

    def update(self, value: float) -> bool:
        """Add ``value``; True if it ends a confirmed spike (the metric came back)."""
        self._index += 1
        if self._run:
            return self._continue_run(value)
        if len(self._history) >= self.MIN_HISTORY:
            if self._stale() or abs(value - self._expected()) > self._limit / 2:
                self._reference()  # anything near the limit is judged on a fresh reference
            if abs(value - self._expected()) > self._limit:
                self._run = [(self._index, value)]
                return False
        self._history.append((self._index, value))
        return False

    def _continue_run(self, value: float) -> bool:
        if abs(value - self._expected()) <= self._limit:
            self._run = []
            self._history.append((self._index, value))
            return True
        self._run.append((self._index, value))
        if len(self._run) > self._max_run:  # it stayed there: a change, not a spike
            self._history.clear()
            self._history.extend(self._run)
            self._run = []
        return False

    def _stale(self) -> bool:
        return self._limit <= 0 or self._index - self._trend[0] >= self.REFRESH

    def _expected(self) -> float:
        index, centre, slope = self._trend
        return centre + slope * (self._index - index)

    def _reference(self) -> None:
        points = list(self._history)
        slope = statistics.median(
            [(vj - vi) / (j - i) for k, (i, vi) in enumerate(points) for j, vj in points[k + 1 :]]
        )
        projected = [v + slope * (self._index - i) for i, v in points]
        centre = statistics.median(projected)
        mad = statistics.median(abs(p - centre) for p in projected)
        scale = max(self.MAD_TO_SIGMA * mad, self._floor)
        self._trend = (self._index, centre, slope)
        self._limit = max(self.K * scale, self._tolerance)


class ExceptionReporter:
    """Report by exception: send when a metric moved beyond its deadband, or when silent too long.

    A metric without a deadband sends on any change. Every report carries all current metrics so
    the cloud always has a consistent snapshot.
    """

    def __init__(self, config: AgentConfig) -> None:
        self._deadbands = dict(config.deadbands)
        self._max_silence_s = config.max_silence_s
        self._last_sent: dict[str, float] = {}
        self._last_sent_at_s: float | None = None

    def due(self, values: Mapping[str, float], now_s: float) -> str | None:
        """Why ``values`` should be sent now (``"change"``, ``"heartbeat"``), or ``None``."""
        if self._last_sent_at_s is None or now_s - self._last_sent_at_s >= self._max_silence_s:
            return "heartbeat"
        for metric, value in values.items():
            last = self._last_sent.get(metric)
            if last is None or abs(value - last) > self._deadbands.get(metric, 0.0):
                return "change"
        return None

    def sent(self, values: Mapping[str, float], now_s: float) -> None:
        """Record that ``values`` went out at ``now_s``."""
        self._last_sent.update(values)
        self._last_sent_at_s = now_s


class Band(Enum):
    """Where a value sits relative to its threshold."""

    NORMAL = "normal"
    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Crossing:
    """A metric entered or left a critical band."""

    metric: str
    value: float
    band: Band
    previous: Band
    limit: float
    severity: str

    @property
    def event_type(self) -> str:
        """The wire event type: ``threshold_high``, ``threshold_low`` or ``threshold_cleared``."""
        return "threshold_cleared" if self.band is Band.NORMAL else f"threshold_{self.band.value}"


class ThresholdWatch:
    """Tracks each thresholded metric's band, with hysteresis, and reports transitions."""

    def __init__(self, thresholds: Mapping[str, Threshold]) -> None:
        self._thresholds = dict(thresholds)
        self._bands: dict[str, Band] = {}

    def update(self, values: Mapping[str, float]) -> list[Crossing]:
        """Feed one filtered sample; the crossings it caused."""
        crossings: list[Crossing] = []
        for metric, threshold in self._thresholds.items():
            value = values.get(metric)
            if value is None:
                continue
            previous = self._bands.get(metric, Band.NORMAL)
            band = _band(value, threshold, previous)
            if band is not previous:
                self._bands[metric] = band
                limit = _limit(threshold, band, previous)
                crossings.append(Crossing(metric, value, band, previous, limit, threshold.severity))
        return crossings


def _band(value: float, threshold: Threshold, previous: Band) -> Band:
    hyst = threshold.hysteresis
    if threshold.high is not None:
        if value > threshold.high:
            return Band.HIGH
        if previous is Band.HIGH and value > threshold.high - hyst:
            return Band.HIGH
    if threshold.low is not None:
        if value < threshold.low:
            return Band.LOW
        if previous is Band.LOW and value < threshold.low + hyst:
            return Band.LOW
    return Band.NORMAL


def _limit(threshold: Threshold, band: Band, previous: Band) -> float:
    side = band if band is not Band.NORMAL else previous
    value = threshold.high if side is Band.HIGH else threshold.low
    return float(value) if value is not None else 0.0
