"""The scoring helper on hand-made cases: early, late, missed, false, shared manholes, edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim import TIERS, LabelScore, ScoredAlert, TruthEvent, score_alerts

T0 = 1_786_291_200.0
H = 3600.0


def _event(
    unit: str, onset_h: float, end_h: float, *devices: str, label: str = "overflow"
) -> TruthEvent:
    return TruthEvent(
        label=label, unit=unit, device_ids=devices or (unit,), district="jiaojiang",
        kind="drain", onset_s=T0 + onset_h * H, end_s=T0 + end_h * H, peak=None,
        peak_at_s=None, volume_m3=None, detail="",
    )  # fmt: skip


def _alert(device: str, at_h: float, tier: str = "orange", label: str = "overflow") -> ScoredAlert:
    return ScoredAlert(device, T0 + at_h * H, tier, label)


EVENTS = [
    _event("jj-J001", 2.0, 3.0, "dr-1", "dr-2", "dr-3"),  # warned early, by three sensors
    _event("jj-J002", 2.0, 3.0, "dr-4"),  # warned late (after onset, before end)
    _event("jj-J003", 5.0, 6.0, "dr-5"),  # missed
]


def _score(alerts: list[ScoredAlert], **kw: object) -> LabelScore:
    args: dict[str, object] = {"label": "overflow", "horizon_s": H} | kw
    return score_alerts(alerts, EVENTS, **args)  # type: ignore[arg-type]


def test_early_late_missed_and_false_warnings() -> None:
    alerts = [
        _alert("dr-1", 1.5), _alert("dr-2", 1.6), _alert("dr-3", 1.75),  # one warning, 30 min early
        _alert("dr-4", 2.5),  # late: detected, not warned
        _alert("dr-9", 4.0),  # a device with no event: a false alarm
    ]  # fmt: skip
    score = _score(alerts)
    assert score.warnings == 3
    assert score.true_warnings == 2
    assert (score.events, score.events_warned, score.events_detected) == (3, 1, 2)
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(1 / 3)
    assert score.lead_times_s == (1800.0,)
    assert score.median_lead_s == 1800.0


def test_several_sensors_on_one_manhole_count_once_via_the_network_map() -> None:
    alerts = [_alert("dr-x", 1.5), _alert("dr-y", 1.9)]
    units = {"dr-x": "jj-J001", "dr-y": "jj-J001"}
    score = _score(alerts, device_units=units)
    assert (score.warnings, score.true_warnings, score.events_warned) == (1, 1, 1)
    assert score.lead_times_s == (1800.0,)
    # Without the map, devices the truth does not list are their own units: false alarms.
    assert _score(alerts).true_warnings == 0


def test_alerts_further_apart_than_the_horizon_are_separate_warnings() -> None:
    alerts = [_alert("dr-1", 0.0), _alert("dr-1", 1.5)]
    score = _score(alerts)
    assert (score.warnings, score.true_warnings) == (2, 1)
    assert score.lead_times_s == (1800.0,)
    # A chain of alerts each less than the horizon after the last is one warning at its first.
    chain = [_alert("dr-1", h) for h in (0.0, 0.9, 1.8)]
    chained = _score(chain)
    assert (chained.warnings, chained.true_warnings, chained.events_warned) == (1, 0, 0)


def test_min_tier_and_label_filter_the_alerts() -> None:
    alerts = [_alert("dr-1", 1.5, tier="yellow"), _alert("dr-4", 1.5, label="surcharge")]
    assert _score(alerts).warnings == 0
    assert _score(alerts).precision == 1.0
    assert _score(alerts).recall == 0.0
    low = _score(alerts, min_tier="yellow")
    assert (low.warnings, low.events_warned) == (1, 1)
    red = _score([_alert("dr-1", 1.5, tier="red")])
    assert red.events_warned == 1


def test_horizon_edges_are_inclusive() -> None:
    at_horizon = _score([_alert("dr-1", 1.0)])  # exactly onset - horizon
    assert at_horizon.events_warned == 1
    assert at_horizon.lead_times_s == (H,)
    too_early = _score([_alert("dr-1", 1.0 - 1 / H)])
    assert too_early.events_warned == 0
    assert too_early.true_warnings == 0
    at_onset = _score([_alert("dr-1", 2.0)])
    assert at_onset.lead_times_s == (0.0,)
    at_end = _score([_alert("dr-1", 3.0)])
    assert (at_end.events_warned, at_end.events_detected, at_end.true_warnings) == (0, 1, 1)
    after_end = _score([_alert("dr-1", 3.0 + 1 / H)])
    assert (after_end.events_detected, after_end.true_warnings) == (0, 0)


def test_events_of_other_labels_do_not_count_and_no_events_is_full_recall() -> None:
    odour = [_event("wc-1", 1.0, 2.0, label="odour_nh3")]
    score = score_alerts([_alert("wc-1", 0.5, label="odour_nh3")], odour, label="overflow",
                         horizon_s=H)  # fmt: skip
    assert (score.events, score.warnings, score.recall, score.median_lead_s) == (0, 0, 1.0, None)


def test_bad_tiers_are_refused() -> None:
    with pytest.raises(ValueError, match="tier"):
        ScoredAlert("dr-1", T0, "purple", "overflow")
    with pytest.raises(ValueError, match="min_tier"):
        _score([], min_tier="amber")


@given(
    st.lists(st.tuples(st.sampled_from(["dr-1", "dr-2", "dr-4", "dr-5", "dr-9"]),
                       st.floats(0, 7), st.sampled_from(TIERS)), max_size=25),
    st.floats(0, 3),
)  # fmt: skip
def test_scores_stay_within_their_bounds(
    rows: list[tuple[str, float, str]], horizon_h: float
) -> None:
    alerts = [_alert(d, h, tier=t) for d, h, t in rows]
    score = _score(alerts, horizon_s=horizon_h * H)
    assert 0.0 <= score.precision <= 1.0
    assert 0.0 <= score.recall <= 1.0
    assert score.true_warnings <= score.warnings <= len(alerts)
    assert score.events_warned <= score.events_detected <= score.events == len(EVENTS)
    assert len(score.lead_times_s) == score.events_warned
    assert all(0.0 <= lead <= horizon_h * H for lead in score.lead_times_s)


def test_a_sensors_own_fault_event_does_not_hide_its_manhole() -> None:
    fouled = TruthEvent(label="fault:fouling", unit="dr-2", device_ids=("dr-2",),
                        district="jiaojiang", kind="drain", onset_s=T0,
                        end_s=T0 + 9 * H)  # fmt: skip
    events = [*EVENTS, fouled]
    for order in (events, events[::-1]):
        score = score_alerts([_alert("dr-2", 1.5)], order, label="overflow", horizon_s=H)
        assert (score.true_warnings, score.events_warned) == (1, 1)
