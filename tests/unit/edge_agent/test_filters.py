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


QUIET = [1.0, 1.01, 0.99, 1.0, 1.01, 0.99]


def test_median_filter_flags_the_spike_it_replaced_once_the_metric_came_back() -> None:
    median = MedianFilter(3, floors={"level_m": 0.01})
    flagged = [median.update_flagged({"level_m": v})[1] for v in [*QUIET, 9.0, 1.0, 1.0]]
    assert flagged == [frozenset()] * 7 + [{"level_m"}, frozenset()]


def test_a_step_is_not_a_spike() -> None:
    median = MedianFilter(3, floors={"level_m": 0.01})
    assert not any(median.update_flagged({"level_m": v})[1] for v in [*QUIET, 2.0, 2.0, 2.0, 2.0])


def test_a_ramp_and_small_noise_are_not_spikes() -> None:
    ramp = MedianFilter(3)
    assert not any(ramp.update_flagged({"level_m": v / 10})[1] for v in range(40))
    noisy = MedianFilter(5, tolerances={"level_m": 0.05})
    signal = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0] * 4
    assert not any(noisy.update_flagged({"level_m": v})[1] for v in signal)


def test_a_spike_within_the_tolerance_is_not_flagged() -> None:
    median = MedianFilter(3, tolerances={"level_m": 0.5})
    values = [*QUIET, 1.4, 1.0, 1.0, 1.6, 1.0]
    flagged = [median.update_flagged({"level_m": v})[1] for v in values]
    assert flagged == [frozenset()] * 10 + [{"level_m"}]


def test_a_quiet_metric_needs_more_than_its_resolution_to_spike() -> None:
    # Five identical samples: a deviation of zero; one resolution up is noise, not a spike.
    median = MedianFilter(3, floors={"level_m": 0.05})
    values = [1.0] * 6 + [1.05, 1.0, 1.1, 1.0, 1.5, 1.0]
    flagged = [median.update_flagged({"level_m": v})[1] for v in values]
    assert flagged == [frozenset()] * 11 + [{"level_m"}]


def test_window_of_one_never_flags() -> None:
    median = MedianFilter(1)
    assert not any(median.update_flagged({"level_m": v})[1] for v in (1.0, 9.0, 1.0))


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
