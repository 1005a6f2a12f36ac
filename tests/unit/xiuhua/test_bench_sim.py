"""The simulator benchmark times the storm, not the dry hours before it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from firmware_sim import load_scenario


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "bench" / "bench_sim.py"
    spec = importlib.util.spec_from_file_location("bench_sim", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("minutes", [30, 120, 600])
def test_the_default_window_lies_inside_the_typhoon(minutes: int) -> None:
    bench = _bench()
    typhoon = load_scenario("typhoon_rainstorm")
    storm = bench.storm_hours(typhoon)
    assert storm is not None
    start, end = storm
    assert end - start >= 10  # a long storm: the window must not stop before it
    begin = bench.window_start_h(typhoon, minutes, None)
    assert start <= begin
    assert begin + minutes / 60 <= end


def test_a_dry_scenario_starts_at_hour_zero_and_an_asked_hour_is_kept() -> None:
    bench = _bench()
    dry = load_scenario("normal_day")
    assert bench.storm_hours(dry) is None
    assert bench.window_start_h(dry, 60, None) == 0.0
    assert bench.window_start_h(load_scenario("typhoon_rainstorm"), 60, 3.5) == 3.5
