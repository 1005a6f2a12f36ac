"""Median spike rejection, report by exception, threshold watch."""

from __future__ import annotations

import pytest

from edge_agent import AgentConfig, Band, ExceptionReporter, MedianFilter, Threshold, ThresholdWatch


def test_median_filter_removes_a_one_sample_spike() -> None:
    median = MedianFilter(3)
    out = [median.update({"level_m": v})["level_m"] for v in (1.0, 1.0, 9.0, 1.0, 1.0)]
    assert out == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_median_filter_passes_a_real_step_after_half_the_window() -> None:
    median = MedianFilter(3)
    out = [median.update({"level_m": v})["level_m"] for v in (1.0, 1.0, 2.0, 2.0)]
    assert out == [1.0, 1.0, 1.0, 2.0]


@pytest.mark.parametrize("window", [0, 2, -1])
def test_median_window_must_be_odd_and_positive(window: int) -> None:
    with pytest.raises(ValueError, match="odd"):
        MedianFilter(window)


def test_flat_signal_sends_only_heartbeats() -> None:
    reporter = ExceptionReporter(
        AgentConfig(interval_s=1, max_silence_s=10, deadbands={"level_m": 0.05})
    )
    reasons = []
    for t in range(31):
        reason = reporter.due({"level_m": 1.0 + 0.01 * (t % 2)}, float(t))
        if reason:
            reporter.sent({"level_m": 1.0}, float(t))
        reasons.append(reason)
    assert [t for t, r in enumerate(reasons) if r] == [0, 10, 20, 30]
    assert {r for r in reasons if r} == {"heartbeat"}


def test_a_step_beyond_the_deadband_sends_at_once() -> None:
    reporter = ExceptionReporter(
        AgentConfig(interval_s=1, max_silence_s=100, deadbands={"level_m": 0.05})
    )
    reporter.sent({"level_m": 1.0}, 0.0)
    assert reporter.due({"level_m": 1.04}, 1.0) is None
    assert reporter.due({"level_m": 1.2}, 2.0) == "change"


def test_threshold_crossing_with_hysteresis_reports_each_transition_once() -> None:
    watch = ThresholdWatch({"level_m": Threshold(high=2.0, hysteresis=0.2)})
    bands: list[tuple[Band, str]] = []
    for value in (1.0, 2.1, 2.5, 1.9, 1.85, 1.7, 2.3):
        bands.extend((c.band, c.event_type) for c in watch.update({"level_m": value}))
    assert bands == [
        (Band.HIGH, "threshold_high"),
        (Band.NORMAL, "threshold_cleared"),
        (Band.HIGH, "threshold_high"),
    ]


def test_low_threshold() -> None:
    watch = ThresholdWatch({"battery_v": Threshold(low=3.3, severity="warning")})
    crossings = watch.update({"battery_v": 3.1})
    assert [(c.event_type, c.limit, c.severity) for c in crossings] == [
        ("threshold_low", 3.3, "warning")
    ]
