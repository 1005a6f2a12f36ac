"""Level sensors foul and are cleaned, and fail to read with water at the cover: all labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware_sim import FleetSimulation, load_scenario, make_fleet
from firmware_sim._drain import DrainModel
from firmware_sim._levelsensor import DROWNED_M, FOULING_LABEL_M, LevelSensors
from telemetry_core.kinds import DeviceKind
from tests.unit.firmware_sim.conftest import START_S, scenario

DAY_S = 86_400.0


def test_fouling_grows_until_a_cleaning_resets_it_and_is_labelled() -> None:
    fleet = make_fleet("luqiao", DeviceKind.DRAIN, 200, 1)
    sensors = LevelSensors(fleet, 1)
    days = np.arange(0, 60 * 24) / 24  # hourly for 60 days
    offsets = np.array([sensors.fouling_m(d * DAY_S) for d in days])  # (T, n)
    drops = np.diff(offsets, axis=0) < -1e-4
    assert drops.any(axis=0).all()  # every sensor is cleaned in 60 days
    assert offsets.max() < 0.2
    assert offsets.min() >= 0
    events = sensors.fouling_events(START_S, START_S + 60 * DAY_S)
    assert {e.label for e in events} == {"fault:fouling"}
    for e in events[:50]:
        i = next(k for k, d in enumerate(fleet) if d.device_id == e.unit)
        inside = (START_S + days * DAY_S >= e.onset_s + 3600) & (START_S + days * DAY_S < e.end_s)
        assert np.all(offsets[inside, i] > FOULING_LABEL_M)


def test_a_drowned_sensor_head_fails_to_read_and_is_labelled(swmm_cache: Path) -> None:
    fleet = make_fleet("sanmen", DeviceKind.DRAIN, 12, 0, nodes_per_district=12)
    typhoon = load_scenario("typhoon_rainstorm").model_copy(update={"sensor_faults": ()})
    sim = FleetSimulation(fleet, typhoon, 1, START_S, nodes_per_district=12,
                          cache_dir=swmm_cache)  # fmt: skip
    _, _, model = sim.kind_state(DeviceKind.DRAIN)
    assert isinstance(model, DrainModel)
    res = model.hydraulics(swmm_cache, 600)
    missing_when_drowned = []
    for minute in range(9 * 60, 16 * 60, 2):
        at = START_S + minute * 60
        readings = sim.read_all(at)
        depth = np.array([np.interp(minute * 60, res.times_s, res.depth_m[:, k])
                          for k in model._node_idx])  # fmt: skip
        limit = np.array([d.attr("ground_elev_m") - d.attr("invert_elev_m") for d in fleet])
        for i, d in enumerate(fleet):
            reading = readings[d.device_id]
            assert isinstance(reading, dict)
            drowned = depth[i] >= limit[i] - DROWNED_M
            assert ("level_m" not in reading) == drowned, (d.device_id, minute)
            assert ("fill_ratio" not in reading) == drowned
            missing_when_drowned.append(drowned)
    assert any(missing_when_drowned)
    labels = {e.label for e in sim.truth_events(START_S + 24 * 3600)}
    assert {"fault:submerged", "overflow"} <= labels


def test_reported_level_is_true_level_plus_fouling(swmm_cache: Path) -> None:
    fleet = make_fleet("tiantai", DeviceKind.DRAIN, 6, 0, nodes_per_district=6)
    sim = FleetSimulation(fleet, scenario(duration_h=2, baseline_noise=False), 1, START_S,
                          nodes_per_district=6, cache_dir=swmm_cache)  # fmt: skip
    _, _, model = sim.kind_state(DeviceKind.DRAIN)
    assert isinstance(model, DrainModel)
    res = model.hydraulics(swmm_cache, 600)
    readings = sim.read_all(START_S + 3600)
    offsets = model.level_sensors.fouling_m(3600.0)
    for i, d in enumerate(fleet):
        true = float(np.interp(3600.0, res.times_s, res.depth_m[:, model._node_idx[i]]))
        got = readings[d.device_id]
        assert isinstance(got, dict)
        assert got["level_m"] == pytest.approx(true + offsets[i], abs=0.01)
