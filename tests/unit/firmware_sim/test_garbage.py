"""Garbage stations: bins fill between collections, empty at them, overflow when one is missed."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from firmware_sim import FleetSimulation, load_scenario, make_fleet
from telemetry_core.kinds import WASTE_CATEGORIES, DeviceKind
from tests.unit.firmware_sim.conftest import START_S, ok, scenario

FLEET = make_fleet("luqiao", DeviceKind.GARBAGE, 30, 4)


def _fill(sim: FleetSimulation, hour: float) -> np.ndarray:
    readings = sim.read_all(START_S + hour * 3600)
    return np.array(
        [
            [r[f"fill_{c}_pct"] for c in WASTE_CATEGORIES]
            for r in readings.values()
            if isinstance(r, dict)
        ]
    )


def test_bins_fill_between_collections_and_empty_at_them() -> None:
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    after_morning = _fill(sim, 7.1)
    before_evening = _fill(sim, 18.9)
    after_evening = _fill(sim, 19.1)
    assert np.all(before_evening > after_morning)
    assert np.all(after_evening < 0.2 * before_evening + 1.0)
    assert np.all(after_morning < 5.0)


def test_missed_collection_overflows_and_is_in_the_ground_truth() -> None:
    missed = [{"fraction": 0.5, "start_h": 18, "duration_h": 2}]
    sim = FleetSimulation(FLEET, scenario(duration_h=36, baseline_noise=False,
                                          missed_collections=missed), 1, START_S)  # fmt: skip
    next_morning = _fill(sim, 30.9)
    overflowing = (next_morning > 100.0).any(axis=1)
    assert 0 < overflowing.sum() < len(FLEET)
    emptied = _fill(sim, 31.1)
    assert np.all(emptied < 10.0)
    truth = [r for r in sim.ground_truth(START_S + 32 * 3600) if r.what == "bin_full"]
    full_ids = {r.device_id for r in truth}
    assert {FLEET[i].device_id for i in np.flatnonzero(overflowing)} <= full_ids
    assert all(r.end_s <= START_S + 31.1 * 3600 for r in truth)


def test_weight_follows_fill() -> None:
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False), 1, START_S)
    low = sim.read_all(START_S + 7.1 * 3600)
    high = sim.read_all(START_S + 18.9 * 3600)
    for device_id, reading in high.items():
        assert isinstance(reading, dict)
        assert reading["weight_kg"] > ok(low[device_id])["weight_kg"]


def test_fire_heats_the_station_and_is_recorded() -> None:
    target = FLEET[5].device_id
    fire = [{"type": "fire", "devices": [target], "start_h": 10, "duration_h": 1}]
    sim = FleetSimulation(FLEET, scenario(baseline_noise=False, incidents=fire), 1, START_S)
    before = sim.read_all(START_S + 9.9 * 3600)
    during = sim.read_all(START_S + 10.5 * 3600)
    assert ok(before[target])["temperature_c"] < 40
    assert ok(during[target])["temperature_c"] > 150
    others = [r["temperature_c"] for d, r in during.items() if d != target and isinstance(r, dict)]
    assert max(others) < 40
    fires = [r for r in sim.ground_truth(START_S + 12 * 3600) if r.what == "fire"]
    assert [(r.device_id, r.start_s, r.end_s) for r in fires] == [
        (target, START_S + 36_000, START_S + 39_600)
    ]


def test_on_a_normal_day_no_bin_is_full_and_half_days_bring_45_to_85_percent() -> None:
    fleet = make_fleet(None, DeviceKind.GARBAGE, 90, 6)
    sim = FleetSimulation(fleet, load_scenario("normal_day"), 1, START_S)
    before_evening = np.array(
        [
            [ok(r)[f"fill_{c}_pct"] for c in WASTE_CATEGORIES]
            for r in sim.read_all(START_S + 18.98 * 3600).values()
        ]
    )
    events = sim.truth_events(START_S + 48 * 3600)
    assert [e for e in events if e.label in ("bin_full", "missed_collection")] == []
    assert before_evening.min() > 40.0
    assert before_evening.max() < 95.0


def test_the_missed_collection_scenario_skips_the_evening_round_only() -> None:
    fleet = make_fleet(None, DeviceKind.GARBAGE, 90, 6)
    sim = FleetSimulation(fleet, load_scenario("missed_collection"), 1, START_S)
    events = sim.truth_events(START_S + 36 * 3600)
    missed = [e for e in events if e.label == "missed_collection"]
    stations = {e.unit for e in missed}
    eligible = [d for d in fleet if d.district in ("luqiao", "jiaojiang")]
    assert len(stations) == math.ceil(0.34 * len(eligible))
    assert {e.district for e in missed} <= {"luqiao", "jiaojiang"}
    # Each bin of a skipped station: from the 19:00 round it missed to the 07:00 one.
    assert Counter(e.unit for e in missed) == dict.fromkeys(stations, 4)
    assert {(e.onset_s, e.end_s) for e in missed} == {(START_S + 19 * 3600, START_S + 31 * 3600)}
    full = [e for e in events if e.label == "bin_full"]
    assert full
    assert {e.unit for e in full} <= stations
    assert all(e.onset_s >= START_S + 19 * 3600 and e.end_s <= START_S + 31 * 3600 for e in full)
    assert {e.detail for e in full} <= {f"category={c}" for c in WASTE_CATEGORIES}
    assert all(e.peak is not None and e.peak >= 100.0 for e in full)


def test_a_crowd_fills_bins_before_the_evening_collection() -> None:
    fleet = make_fleet(None, DeviceKind.GARBAGE, 90, 6)
    sim = FleetSimulation(fleet, load_scenario("festival_crowd"), 1, START_S)
    full = [e for e in sim.truth_events(START_S + 24 * 3600) if e.label == "bin_full"]
    assert {e.district for e in full} == {"linhai", "jiaojiang"}
    assert all(START_S + 17 * 3600 <= e.onset_s < START_S + 23 * 3600 for e in full)
