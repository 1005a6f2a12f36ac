"""Edge processing: median spike rejection, report by exception, local threshold watch.

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
    """Per-metric running median over the last ``window`` raw samples.

    A spike shorter than half the window never reaches the output. The price is latency: a real
    step shows after ``window // 2 + 1`` samples, which is why thresholds and deadbands see the
    filtered value only when the window is above 1.

    A sample counts as a *spike* (and its metric is reported as ``spike_filtered``) when the
    median replaced it and it lies further from the median than both ``SPIKE_MADS`` median
    absolute deviations of the window and the metric's tolerance (its deadband): a ramp or
    ordinary noise moves the median with it and is not flagged; a lone outlier is.
    """

    SPIKE_MADS = 3.0

    def __init__(self, window: int, tolerances: Mapping[str, float] | None = None) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"median window must be odd and >= 1, got {window}")
        self._window = window
        self._tolerances = dict(tolerances or {})
        self._history: dict[str, deque[float]] = {}

    def update(self, raw: Mapping[str, float]) -> dict[str, float]:
        """Add one sample; the filtered value of every metric in it."""
        return self.update_flagged(raw)[0]

    def update_flagged(self, raw: Mapping[str, float]) -> tuple[dict[str, float], frozenset[str]]:
        """Add one sample; the filtered values and the metrics whose raw value was a spike."""
        out: dict[str, float] = {}
        spikes: set[str] = set()
        for metric, value in raw.items():
            history = self._history.setdefault(metric, deque(maxlen=self._window))
            history.append(value)
            out[metric] = median = statistics.median(history)
            if self._is_spike(value, median, history, self._tolerances.get(metric, 0.0)):
                spikes.add(metric)
        return out, frozenset(spikes)

    def _is_spike(
        self, value: float, median: float, history: deque[float], tolerance: float
    ) -> bool:
        if len(history) < self._window or value == median:
            return False
        mad = statistics.median(abs(v - median) for v in history)
        return abs(value - median) > max(self.SPIKE_MADS * mad, tolerance)


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
