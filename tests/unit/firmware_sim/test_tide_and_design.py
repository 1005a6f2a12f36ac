"""Tide by district with flap gates, manholes that fill at real rates, pipes that hold a storm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware_sim import load_scenario
from firmware_sim._geo import DISTRICTS
from firmware_sim._network import Network, generate_network
from firmware_sim._rainfield import RainField
from firmware_sim._scenario import Scenario
from firmware_sim._swmm import HydraulicResult, build_inp, prefixed, run_swmm
from tests.unit.firmware_sim.conftest import START_S, scenario

COASTAL = {"jiaojiang", "luqiao", "linhai", "wenling", "yuhuan", "sanmen"}


def _run(nets: list[Network], sc: Scenario, cache: Path) -> HydraulicResult:
    inp = build_inp(nets, RainField(sc, 1), START_S, sc.duration_s, sc.storm_surge)
    return run_swmm(inp, START_S, cache, 600)


def _junctions(res: HydraulicResult, net: Network) -> list[int]:
    names = {prefixed(net, j.name) for j in net.junctions}
    return [i for i, n in enumerate(res.node_names) if n in names]


def test_coastal_districts_have_a_gated_tidal_outfall_inland_ones_a_free_one() -> None:
    assert {d.name for d in DISTRICTS.values() if d.coastal} == COASTAL
    nets = [generate_network(name, 6) for name in ("jiaojiang", "tiantai", "xianju", "huangyan")]
    inp = build_inp(nets, RainField(scenario(), 0), START_S, 13 * 3600.0, None)
    outfalls = inp.split("[OUTFALLS]")[1].split("[")[0].split("\n")
    rows = {row.split()[0][:2]: row.split()[2:] for row in outfalls if row.strip()}
    assert rows["jj"] == ["TIMESERIES", "TIDE_jj", "YES"]
    assert rows["tt"] == rows["xj"] == rows["hy"] == ["FREE", "NO"]
    tide = [float(r.split()[2]) for r in inp.splitlines() if r.startswith("TIDE_jj ")]
    assert max(tide) - min(tide) == pytest.approx(2 * DISTRICTS["jiaojiang"].tide_amplitude_m, 0.02)


def test_in_dry_weather_no_pipe_runs_backwards(swmm_cache: Path) -> None:
    nets = [generate_network(name, 40) for name in ("jiaojiang", "yuhuan", "tiantai")]
    res = _run(nets, load_scenario("normal_day"), swmm_cache)
    backwards = (res.flow_m3s < -1e-4).mean(axis=0)
    assert backwards.max() < 0.02, dict(zip(res.link_names, backwards.round(3), strict=True))
    # Inland outfalls are free: their depth is the pipe's own normal/critical depth, well under 1 m.
    free = [i for i, n in enumerate(res.node_names) if n.startswith("tt_OUT")]
    assert res.depth_m[:, free].max() < 0.5


def test_a_storm_no_rarer_than_the_pipes_design_does_not_overflow(swmm_cache: Path) -> None:
    for name, p in (("tiantai", 2.0), ("xianju", 5.0), ("jiaojiang", 1.0)):
        net = generate_network(name, 40, min_return_y=p)
        assert min(j.design_return_y for j in net.junctions) >= p
        rain = [{"kind": "design_storm", "start_h": 1, "return_period_y": p, "duration_min": 120}]
        res = _run([net], scenario(duration_h=6, rain=rain), swmm_cache)
        assert (res.flooding_m3s > 1e-4).sum() == 0, (name, p)


def test_manholes_fill_at_rates_real_sensors_show(swmm_cache: Path) -> None:
    net = generate_network("xianju", 40)
    res = _run([net], load_scenario("typhoon_rainstorm"), swmm_cache)
    depth = res.depth_m[:, _junctions(res, net)]
    # The effective plan area of a modelled manhole (its subcatchment's shafts and gullies) keeps
    # the water surface from jumping: under 0.3 m a minute (0.28 here), the order of rises logged
    # in surcharging sewers, where a 1 m² shaft alone would jump a metre a minute.
    assert np.diff(depth, axis=0).max() < 0.3
    out = net.outgoing()
    fill = depth / np.array([out[j.name].diameter_m for j in net.junctions])
    assert fill.max() > 1.0  # the typhoon does surcharge this district...
    flips = [((fill[k] < 0.5) & (fill[k + 10] > 1.0)).mean() for k in range(len(fill) - 10)]
    assert max(flips) < 0.3  # ...but not from normal to surcharged everywhere in ten minutes


def test_a_large_network_has_several_catchments_and_floods_plausibly(swmm_cache: Path) -> None:
    net = generate_network("wenling", 300)
    assert len(net.outfalls) >= 5
    out = net.outgoing()

    def path_m(node: str) -> float:
        return out[node].length_m + path_m(out[node].downstream) if node in out else 0.0

    assert max(path_m(j.name) for j in net.junctions) < 3000  # not one 9.5 km trunk
    res = _run([net], load_scenario("typhoon_rainstorm"), swmm_cache)
    flooded = (res.flooding_m3s[:, _junctions(res, net)] > 1e-4).any(axis=0).mean()
    assert 0.02 < flooded < 0.3
