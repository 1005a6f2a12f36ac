"""Drain physics from SWMM on a small network: rain raises levels; overflow needs a full pipe."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from firmware_sim import FleetError, FleetSimulation, HydraulicsError, load_scenario, make_fleet
from firmware_sim._drain import DrainModel
from firmware_sim._swmm import run_swmm
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device
from tests.unit.firmware_sim.conftest import START_S, scenario

NODES = 12


def _fleet() -> list[Device]:
    return make_fleet("sanmen", DeviceKind.DRAIN, NODES, 0, nodes_per_district=NODES)


def _peak_levels(cache: Path, **fields: object) -> tuple[FleetSimulation, np.ndarray]:
    sim = FleetSimulation(_fleet(), scenario(duration_h=6, baseline_noise=False, **fields), 1,
                          START_S, nodes_per_district=NODES, cache_dir=cache)  # fmt: skip
    levels = []
    for minute in range(0, 6 * 60, 10):
        readings = sim.read_all(START_S + minute * 60)
        # A sensor head drowned at the cover reads nothing (see test_level_sensors).
        levels.append(
            [float(r.get("level_m", np.nan)) for r in readings.values() if isinstance(r, dict)]
        )
    return sim, np.nanmax(np.array(levels), axis=0)


def _storm(p: float) -> list[dict[str, object]]:
    return [{"kind": "design_storm", "start_h": 1, "return_period_y": p, "duration_min": 120}]


TYPHOON = [
    {"kind": "typhoon", "start_h": 0.5, "duration_h": 5, "total_mm": 150, "peak_mm_h": 95,
     "wettest_hour_mm": 60}
]  # fmt: skip


def test_more_rain_gives_higher_levels(swmm_cache: Path) -> None:
    _, dry = _peak_levels(swmm_cache)
    _, small = _peak_levels(swmm_cache, rain=_storm(0.5))
    _, large = _peak_levels(swmm_cache, rain=_storm(20))
    assert np.all(small > dry)
    assert np.all(large >= small - 1e-6)
    assert large.mean() > small.mean()


def test_typhoon_overflows_some_nodes_not_others_and_only_when_pipes_are_full(
    swmm_cache: Path,
) -> None:
    sim, _ = _peak_levels(swmm_cache, rain=TYPHOON, storm_surge={"peak_m": 1.6, "peak_h": 3})
    truth = sim.ground_truth(START_S + 6 * 3600)
    overflowing = {r.device_id for r in truth if r.what == "overflow"}
    assert 0 < len(overflowing) < NODES
    surcharged = {r.device_id: r for r in truth if r.what == "surcharge"}
    for rec in (r for r in truth if r.what == "overflow"):
        # A manhole overflows only while the pipe leaving it runs full (beyond its capacity).
        spans = [s for s in truth if s.device_id == rec.device_id and s.what == "surcharge"]
        assert any(s.start_s <= rec.start_s < s.end_s for s in spans), rec
    assert surcharged


def test_a_storm_within_every_pipes_design_does_not_overflow(swmm_cache: Path) -> None:
    sim, _ = _peak_levels(swmm_cache, rain=_storm(0.25))  # the least a branch is designed for
    whats = Counter(r.what for r in sim.ground_truth(START_S + 6 * 3600))
    assert whats["overflow"] == 0


def test_water_quality_is_diluted_by_rain(swmm_cache: Path) -> None:
    sim = FleetSimulation(_fleet(), scenario(duration_h=6, baseline_noise=False, rain=TYPHOON), 1,
                          START_S, nodes_per_district=NODES, cache_dir=swmm_cache)  # fmt: skip
    dry = sim.read_all(START_S + 10 * 60)
    wet = sim.read_all(START_S + 3 * 3600)
    cod_dry = np.mean([r["cod_mgl"] for r in dry.values() if isinstance(r, dict)])
    cod_wet = np.mean([r["cod_mgl"] for r in wet.values() if isinstance(r, dict)])
    assert cod_dry > 200 > cod_wet


def test_a_node_outside_the_network_is_refused() -> None:
    device = _fleet()[0]
    attrs = dict(device.attributes) | {"swmm_node": "J999"}
    bad = Device(device.device_id, device.kind, device.district, device.lat, device.lon, 60, attrs)
    with pytest.raises(FleetError, match="J999"):
        DrainModel([bad], scenario(), 0, START_S, NODES)


def test_a_failed_swmm_run_is_a_hydraulics_error() -> None:
    with pytest.raises(HydraulicsError, match="SWMM"):
        run_swmm("[TITLE]\nbroken\n[JUNCTIONS]\nJ1 nonsense\n", START_S, None, 60)


def test_the_built_in_typhoon_overflows_some_manholes_and_not_others(swmm_cache: Path) -> None:
    sim = FleetSimulation(_fleet(), load_scenario("typhoon_rainstorm"), 1, START_S,
                          nodes_per_district=NODES, cache_dir=swmm_cache)  # fmt: skip
    truth = sim.ground_truth(START_S + 24 * 3600)
    overflowing = {r.device_id for r in truth if r.what == "overflow"}
    assert 0 < len(overflowing) < NODES
    assert all(r.start_s >= START_S + 2 * 3600 for r in truth if r.what == "overflow")
