"""Imperfect sensors: every fault shows in the readings and in the ground truth."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from firmware_sim import FleetSimulation, make_fleet
from telemetry_core.driver import DriverError
from telemetry_core.kinds import DeviceKind
from tests.unit.firmware_sim.conftest import START_S, ok, scenario

FLEET = make_fleet("wenling", DeviceKind.TOILET, 10, 8)
ID = FLEET[0].device_id


def _sim(fault: dict[str, object]) -> FleetSimulation:
    entry = {"kinds": ["toilet"], "devices": [ID], "start_h": 2, "duration_h": 2, **fault}
    return FleetSimulation(FLEET, scenario(sensor_faults=[entry]), 1, START_S)


def _raw(sim: FleetSimulation, hours: np.ndarray) -> list[Mapping[str, float] | DriverError]:
    return [sim.read_all(START_S + h * 3600)[ID] for h in hours]


def _reads(sim: FleetSimulation, hours: np.ndarray) -> list[Mapping[str, float]]:
    return [ok(r) for r in _raw(sim, hours)]


def _truth(sim: FleetSimulation) -> set[tuple[str, str]]:
    return {(r.device_id, r.what) for r in sim.ground_truth(START_S + 5 * 3600)}


def test_stuck_sensor_repeats_one_value_then_recovers() -> None:
    sim = _sim({"type": "stuck", "metric": "temperature_c"})
    during = [r["temperature_c"] for r in _reads(sim, np.arange(2.1, 3.9, 0.1))]
    after = [r["temperature_c"] for r in _reads(sim, np.arange(4.1, 4.6, 0.1))]
    assert len(set(during)) == 1
    assert len(set(after)) > 1
    assert (ID, "fault:stuck") in _truth(sim)


def test_drift_grows_with_time() -> None:
    clean = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False, sensor_faults=[
        {"type": "drift", "kinds": ["toilet"], "devices": [ID], "metric": "humidity_pct",
         "start_h": 2, "duration_h": 2, "magnitude": 5}]), 1, START_S)  # fmt: skip
    hours = np.array([2.5, 3.5])
    offsets = [
        a["humidity_pct"] - b["humidity_pct"]
        for a, b in zip(_reads(sim, hours), _reads(clean, hours), strict=True)
    ]
    assert 0 < offsets[0] < offsets[1]
    assert (ID, "fault:drift") in _truth(sim)


def test_spikes_jump_far_from_the_truth() -> None:
    sim = _sim({"type": "spike", "metric": "nh3_mgm3", "probability": 0.5, "magnitude": 10})
    values = np.array([r["nh3_mgm3"] for r in _reads(sim, np.arange(2.05, 3.9, 0.05))])
    assert values.max() > 5.0 > np.median(values)
    assert (ID, "fault:spike") in _truth(sim)


def test_dropout_leaves_the_metric_out_or_fails_the_read() -> None:
    sim = _sim({"type": "dropout", "metric": "soap_pct", "probability": 0.5})
    reads = _reads(sim, np.arange(2.05, 3.9, 0.05))
    assert any("soap_pct" not in r for r in reads)
    assert any("soap_pct" in r for r in reads)
    whole = _sim({"type": "dropout", "probability": 0.5, "whole_device": True})
    raw = _raw(whole, np.arange(2.05, 3.9, 0.05))
    assert any(isinstance(r, DriverError) for r in raw)
    # A whole failed read is the device out, not a dropout of one metric.
    assert (ID, "device_outage") in _truth(whole)
    assert (ID, "fault:dropout") not in _truth(whole)
    assert (ID, "fault:dropout") in _truth(sim)


def test_noise_fault_widens_the_scatter() -> None:
    sim = _sim({"type": "noise", "metric": "temperature_c", "magnitude": 20})
    hours = np.arange(2.05, 3.9, 0.05)
    noisy = np.diff([r["temperature_c"] for r in _reads(sim, hours)])
    clean = FleetSimulation(FLEET, scenario(), 1, START_S)
    calm = np.diff([r["temperature_c"] for r in _reads(clean, hours)])
    assert noisy.std() > 5 * calm.std()
    assert (ID, "fault:noise") in _truth(sim)


def test_battery_fault_drains_the_battery() -> None:
    sim = _sim({"type": "battery", "magnitude": 20})
    start, end = (r["battery_v"] for r in _reads(sim, np.array([1.9, 3.9])))
    assert end < start - 2.0
    assert (ID, "fault:battery") in _truth(sim)


def test_clock_skew_is_exposed_by_the_driver() -> None:
    sim = _sim({"type": "clock_skew", "magnitude": 2})
    driver = next(d for d in sim.drivers() if d.device_id == ID)
    driver.read(START_S + 3600)
    assert driver.clock_skew_s == 0.0
    driver.read(START_S + 3 * 3600)
    assert driver.clock_skew_s == 120.0
    assert (ID, "fault:clock_skew") in _truth(sim)
