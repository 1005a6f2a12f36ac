"""Toilet physics: footfall follows the day, odour follows use, consumables run out and refill."""

from __future__ import annotations

from collections import Counter

import numpy as np

from firmware_sim import FleetSimulation, TruthEvent, load_scenario, make_fleet
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device
from tests.unit.firmware_sim.conftest import START_S, ok, scenario

FLEET = make_fleet("linhai", DeviceKind.TOILET, 40, 3)


def _series(sim: FleetSimulation, metric: str, hours: list[float]) -> np.ndarray:
    rows = []
    for h in hours:
        readings = sim.read_all(START_S + h * 3600)
        rows.append([float(r[metric]) for r in readings.values() if isinstance(r, dict)])
    return np.array(rows)


def test_footfall_peaks_in_the_day_and_sleeps_at_night() -> None:
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    night = _series(sim, "occupied_stalls", [3.0, 3.5, 4.0]).sum()
    day = _series(sim, "occupied_stalls", [8.0, 8.5, 9.0]).sum()
    assert day > 5 * max(night, 1.0)


def test_odour_follows_use_and_a_crowd_raises_it() -> None:
    crowd = [{"start_h": 6, "duration_h": 6, "multiplier": 4}]
    normal = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    festive = FleetSimulation(FLEET, scenario(baseline_noise=False, crowds=crowd), 1, START_S)
    hours = [9.0, 10.0, 11.0]
    assert (
        _series(festive, "nh3_mgm3", hours).mean() > 1.3 * _series(normal, "nh3_mgm3", hours).mean()
    )
    assert _series(festive, "h2s_mgm3", hours).mean() > _series(normal, "h2s_mgm3", hours).mean()
    quiet = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    assert _series(quiet, "nh3_mgm3", [4.0]).mean() < _series(quiet, "nh3_mgm3", [9.0]).mean()


def test_footfall_count_is_since_the_last_report() -> None:
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    device = FLEET[0].device_id
    sim.read_device(device, START_S + 8 * 3600)
    one_minute = sim.read_device(device, START_S + 8 * 3600 + 60)["footfall_count"]
    hour = sim.read_device(device, START_S + 9 * 3600 + 60)["footfall_count"]
    assert hour > one_minute >= 0


def test_paper_runs_down_and_cleaners_refill_it() -> None:
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    before = _series(sim, "paper_pct", [12.4])
    after = _series(sim, "paper_pct", [12.6])
    assert before.min() < 100.0
    assert np.all(after > 99.0)


def test_incidents_set_fault_bits_and_change_the_physics() -> None:
    incidents = [
        {"type": "leak", "devices": [FLEET[0].device_id], "start_h": 1, "duration_h": 2},
        {"type": "fan_failure", "devices": [FLEET[1].device_id], "start_h": 6, "duration_h": 6},
        {"type": "blocked_pan", "devices": [FLEET[2].device_id], "start_h": 6, "duration_h": 6},
    ]
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False, incidents=incidents), 1, START_S)
    sim.read_all(START_S + 2 * 3600 - 60)
    at_two = sim.read_all(START_S + 2 * 3600)
    assert ok(at_two[FLEET[0].device_id])["fault_code"] == 2
    assert ok(at_two[FLEET[0].device_id])["water_l"] >= 0.25 * 60
    at_ten = sim.read_all(START_S + 10 * 3600)
    nh3 = {d: float(r["nh3_mgm3"]) for d, r in at_ten.items() if isinstance(r, dict)}
    typical = float(np.median(list(nh3.values())))
    assert ok(at_ten[FLEET[1].device_id])["fault_code"] == 4
    assert ok(at_ten[FLEET[2].device_id])["fault_code"] == 1
    assert nh3[FLEET[1].device_id] > 3 * typical
    assert ok(at_ten[FLEET[0].device_id])["fault_code"] == 0
    truth = {(r.device_id, r.what) for r in sim.ground_truth(START_S + 10 * 3600)}
    assert (FLEET[0].device_id, "fault:leak") in truth
    assert (FLEET[1].device_id, "fault:fan_failure") in truth
    assert (FLEET[2].device_id, "fault:blocked_pan") in truth


def test_built_in_festival_crowd_exceeds_the_class_limits_more_often() -> None:
    limits = {1.0: 0.3, 2.0: 1.0, 3.0: 3.0}  # GB/T 17217 ammonia, mg/m3, by toilet class

    def exceedances(name: str) -> int:
        sim = FleetSimulation(FLEET, load_scenario(name), 1, START_S)
        readings = sim.read_all(START_S + 20 * 3600)
        return sum(
            ok(readings[d.device_id])["nh3_mgm3"] > limits[d.attr("toilet_class")] for d in FLEET
        )

    assert exceedances("festival_crowd") > exceedances("normal_day")


def _exceeded_share(events: list[TruthEvent], fleet: list[Device], label: str,
                    window: tuple[float, float]) -> dict[int, float]:  # fmt: skip
    """Per toilet class, the share of toilet-minutes in ``window`` under an ``label`` event."""
    classes = {d.device_id: int(d.attr("toilet_class")) for d in fleet}
    a, b = window
    spent = dict.fromkeys((1, 2, 3), 0.0)
    for e in events:
        if e.label == label:
            spent[classes[e.unit]] += max(0.0, min(e.end_s, b) - max(e.onset_s, a))
    count = Counter(classes.values())
    return {k: spent[k] / (count[k] * (b - a)) for k in (1, 2, 3) if count[k]}


def test_a_normal_day_meets_each_class_limits_almost_always() -> None:
    sim = FleetSimulation(FLEET, load_scenario("normal_day"), 1, START_S)
    events = sim.truth_events(START_S + 24 * 3600)
    day = (START_S, START_S + 24 * 3600)
    assert {int(d.attr("toilet_class")) for d in FLEET} == {1, 2, 3}
    for label in ("odour_nh3", "odour_h2s"):
        shares = _exceeded_share(events, FLEET, label, day)
        assert all(share < 0.02 for share in shares.values()), (label, shares)


def test_a_festival_crowd_exceeds_the_limits_and_is_labelled_by_class() -> None:
    sim = FleetSimulation(FLEET, load_scenario("festival_crowd"), 1, START_S)
    events = sim.truth_events(START_S + 24 * 3600)
    crowd = (START_S + 17 * 3600, START_S + 23 * 3600)
    shares = _exceeded_share(events, FLEET, "odour_nh3", crowd)
    assert all(share > 0.1 for share in shares.values()), shares
    odour = [e for e in events if e.label.startswith("odour_")]
    classes = {d.device_id: int(d.attr("toilet_class")) for d in FLEET}
    assert all(e.detail == f"class={classes[e.unit]}" for e in odour)
    assert all(crowd[0] <= e.onset_s < crowd[1] for e in odour)


def test_a_failed_fan_or_a_blocked_pan_brings_odour_events() -> None:
    fan, pan = FLEET[1].device_id, FLEET[2].device_id
    incidents = [
        {"type": "fan_failure", "devices": [fan], "start_h": 9, "duration_h": 3},
        {"type": "blocked_pan", "devices": [pan], "start_h": 9, "duration_h": 3},
    ]
    sim = FleetSimulation(FLEET, scenario(incidents=incidents), 1, START_S)
    events = sim.truth_events(START_S + 24 * 3600)
    odour = {(e.unit, e.label) for e in events if e.label.startswith("odour_")}
    assert (fan, "odour_nh3") in odour
    assert (pan, "odour_h2s") in odour
    assert {unit for unit, _ in odour} == {fan, pan}
    window = (START_S + 9 * 3600, START_S + 12 * 3600)
    assert all(window[0] <= e.onset_s < window[1] for e in events if e.label.startswith("odour"))
