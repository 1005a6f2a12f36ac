"""Hyetographs honour their own parameters: peak (5 minutes), wettest hour and total."""

from __future__ import annotations

import pytest

from firmware_sim import list_scenarios, load_scenario
from firmware_sim._rain import LSHA_TO_MMH, peak_mmh, storm_intensity_lsha, typhoon_mmh, wettest_mm
from firmware_sim._rainfield import RAIN_STEP_MIN, event_mmh, rain_series
from firmware_sim._scenario import DesignStorm, TyphoonRain

RAINY = [i.name for i in list_scenarios() if load_scenario(i.name).rain]


def _formula_mm(p: float, minutes: float) -> float:
    return storm_intensity_lsha(p, minutes) * LSHA_TO_MMH * minutes / 60


def _expected(event: DesignStorm | TyphoonRain) -> tuple[float, float, float]:
    """(peak 5-minute mm/h, wettest hour mm, total mm) the scenario file asks for."""
    if isinstance(event, TyphoonRain):
        hour = event.wettest_hour_mm or 0.6 * event.peak_mm_h
        return event.peak_mm_h, hour, event.total_mm
    p, minutes = event.return_period_y, event.duration_min
    hour = _formula_mm(p, min(60.0, minutes))
    return _formula_mm(p, 5) * 12, hour, _formula_mm(p, minutes)


def test_there_are_rainy_built_in_scenarios() -> None:
    assert {"typhoon_rainstorm", "design_storm_5y"} <= set(RAINY)


@pytest.mark.parametrize("name", RAINY)
def test_each_storm_holds_its_peak_wettest_hour_and_total(name: str) -> None:
    sc = load_scenario(name)
    for k, event in enumerate(sc.rain):
        series = event_mmh(event, k)
        peak, hour, total = _expected(event)
        assert peak_mmh(series) == pytest.approx(peak, rel=1e-6)
        assert wettest_mm(series, RAIN_STEP_MIN) == pytest.approx(hour, rel=2e-3)
        assert series.sum() * RAIN_STEP_MIN / 60 == pytest.approx(total, rel=1e-6)
    whole = rain_series(sc, 0)
    assert whole.sum() * RAIN_STEP_MIN / 60 == pytest.approx(
        sum(_expected(e)[2] for e in sc.rain), rel=1e-6
    )


def test_the_typhoon_peaks_at_what_it_is_configured_for() -> None:
    series = typhoon_mmh(20, 320, 90, RAIN_STEP_MIN, seed=3, wettest_hour_mm=55)
    assert peak_mmh(series) == pytest.approx(90)
    assert wettest_mm(series, RAIN_STEP_MIN) == pytest.approx(55)
    assert series.min() >= 0


def test_figures_that_cannot_go_together_are_refused() -> None:
    with pytest.raises(ValueError, match="wettest hour"):
        typhoon_mmh(20, 320, 40, RAIN_STEP_MIN, seed=1, wettest_hour_mm=60)
