"""Rain gauges read the rain field that drives SWMM; network.json says which device reads what."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_sim import FleetSimulation, load_scenario, make_fleet, run_to_files, write_network
from firmware_sim._network import generate_network
from firmware_sim._rainfield import RainField, cell_centre, city_xy
from firmware_sim._swmm import build_inp, gauge_name, model_cells
from telemetry_core.kinds import DeviceKind, kind_spec
from tests.unit.firmware_sim.conftest import START_S, ok


def test_rain_is_a_kind_of_the_contract() -> None:
    spec = kind_spec("rain")
    assert spec.kind is DeviceKind.RAIN
    assert spec.label_zh == "雨量站"
    assert {"rain_mmh", "rain_day_mm", "battery_v", "rssi_dbm"} == set(spec.metrics)
    assert spec.metrics["rain_mmh"].high == 500
    assert spec.metrics["rain_day_mm"].high == 2000


def test_a_mixed_fleet_has_a_few_gauges_in_every_district() -> None:
    fleet = make_fleet(None, None, 9000, 1)
    gauges = [d for d in fleet if d.kind is DeviceKind.RAIN]
    per_district = {d.district: 0 for d in gauges}
    for d in gauges:
        per_district[d.district] += 1
        assert d.device_id.startswith(f"rg-{d.device_id[3:5]}-")
    assert len(per_district) == 9
    assert all(2 <= n <= 12 for n in per_district.values())


def test_gauges_catch_the_fields_depth_at_their_position() -> None:
    sc = load_scenario("typhoon_rainstorm")
    fleet = make_fleet("wenling", DeviceKind.RAIN, 4, 1) + make_fleet(
        "xianju", DeviceKind.RAIN, 2, 1
    )
    sim = FleetSimulation(fleet, sc, 1, START_S)
    field = RainField(sc, 1)
    day_end = START_S + 24 * 3600 - 60  # 23:59 local: the whole day so far
    readings = sim.read_all(day_end)
    depths = []
    for d in fleet:
        x, y = city_xy(d.lat, d.lon)
        expected = float(field.depth_mm(np.array([x]), np.array([y]), day_end - START_S)[0])
        assert ok(readings[d.device_id])["rain_day_mm"] == pytest.approx(expected, abs=1e-6)
        depths.append(expected)
    assert min(depths) != max(depths)  # the field varies across the city
    assert 0.6 * field.total_mm < min(depths) < max(depths) < 1.4 * field.total_mm


def test_intensity_is_the_mean_over_the_last_report() -> None:
    sc = load_scenario("design_storm_5y")
    fleet = make_fleet("tiantai", DeviceKind.RAIN, 1, 2)
    sim = FleetSimulation(fleet, sc, 1, START_S)
    totals = []
    for minute in range(12 * 60):
        r = ok(sim.read_all(START_S + minute * 60)[fleet[0].device_id])
        totals.append(r["rain_mmh"] / 60)
        assert r["rain_day_mm"] == pytest.approx(sum(totals), abs=1e-6)
    assert max(totals) * 60 > 100  # a 5-year storm's burst


def test_swmm_rain_gauges_use_the_same_field() -> None:
    sc = load_scenario("typhoon_rainstorm")
    nets = [generate_network("jiaojiang", 40)]
    field = RainField(sc, 1)
    inp = build_inp(nets, field, START_S, sc.duration_s, sc.storm_surge)
    for cell in model_cells(nets):
        name = f"T{gauge_name(cell)}"
        values = [float(r.split()[2]) for r in inp.splitlines() if r.startswith(f"{name} ")]
        swmm_mm = sum(values) * 5 / 60
        x, y = cell_centre(cell)
        assert swmm_mm == pytest.approx(
            float(field.depth_mm(np.array([x]), np.array([y]), sc.duration_s)[0]), rel=1e-3
        )
    subs = inp.split("[SUBCATCHMENTS]")[1].split("[")[0].split()
    assert any(w.startswith("RG_") for w in subs)


def test_network_file_says_which_devices_share_a_node(tmp_path: Path) -> None:
    fleet = make_fleet("jiaojiang", None, 120, 3, nodes_per_district=12)
    path = tmp_path / "network.json"
    count = write_network(fleet, path, 12)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == 1
    assert count == len(doc["nodes"])
    nodes = {n["id"]: n for n in doc["nodes"]}
    drains = [d for d in fleet if d.kind is DeviceKind.DRAIN]
    assert set(doc["devices"]) == {d.device_id for d in drains}
    for d in drains:
        node = nodes[doc["devices"][d.device_id]]
        assert node["id"] == f"jj-{d.attributes['swmm_node']}"
        assert node["pipe_diameter_m"] == d.attr("pipe_diameter_m")
    assert len(set(doc["devices"].values())) < len(doc["devices"])  # shared nodes
    for node in nodes.values():  # a tree: every junction drains, in the end, to an outfall
        hops, at = 0, node
        while at["downstream"] is not None:
            at, hops = nodes[at["downstream"]], hops + 1
            assert hops < len(nodes)
        assert at["kind"] == "outfall"
    assert set(doc["rain_gauges"]) == {d.device_id for d in fleet if d.kind is DeviceKind.RAIN}


def test_a_run_writes_the_network_file(tmp_path: Path, swmm_cache: Path) -> None:
    fleet = make_fleet("tiantai", DeviceKind.DRAIN, 8, 2, nodes_per_district=6)
    run_to_files(fleet, load_scenario("normal_day"), seed=1, start_s=START_S, duration_s=600,
                 out_dir=tmp_path, cache_dir=swmm_cache)  # fmt: skip
    doc = json.loads((tmp_path / "network.json").read_text(encoding="utf-8"))
    assert len(doc["devices"]) == 8
