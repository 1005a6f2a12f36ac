"""The fleet simulation as the edge agent sees it: drivers, time, determinism, outages."""

from __future__ import annotations

from firmware_sim import FleetSimulation, load_scenario, make_fleet
from telemetry_core.driver import DriverError, LinkProbe, SensorDriver
from telemetry_core.kinds import DeviceKind, kind_spec
from tests.unit.firmware_sim.conftest import START_S, scenario

FLEET = make_fleet("jiaojiang", DeviceKind.TOILET, 20, 1) + make_fleet(
    "luqiao", DeviceKind.GARBAGE, 20, 1
)


def test_drivers_implement_the_sensor_driver_protocol() -> None:
    sim = FleetSimulation(FLEET, scenario(), 1, START_S)
    drivers = sim.drivers()
    assert len(drivers) == len(FLEET)
    for driver in drivers:
        assert isinstance(driver, SensorDriver)
        reading = driver.read(START_S + 600)
        assert set(reading) <= set(kind_spec(driver.kind).metrics)
        assert all(kind_spec(driver.kind).metrics[m].in_range(v) for m, v in reading.items())


def test_same_seed_same_readings_different_seed_different() -> None:
    def run(seed: int) -> list[object]:
        sim = FleetSimulation(FLEET, load_scenario("sensor_faults"), seed, START_S)
        return [sim.read_all(START_S + m * 600) for m in range(1, 20)]

    assert repr(run(3)) == repr(run(3))
    assert repr(run(3)) != repr(run(4))


def test_per_device_reads_match_the_vectorised_path() -> None:
    a = FleetSimulation(FLEET, scenario(), 2, START_S)
    b = FleetSimulation(FLEET, scenario(), 2, START_S)
    at = START_S + 3 * 3600
    bulk = a.read_all(at)
    for driver in b.drivers():
        assert driver.read(at) == bulk[driver.device_id]


def test_time_never_goes_back() -> None:
    sim = FleetSimulation(FLEET, scenario(), 2, START_S)
    sim.read_all(START_S + 3600)
    assert sim.advance_to(START_S) == 60
    assert sim.now_s() == START_S + 3600


def test_district_outage_cuts_only_that_district_in_its_window() -> None:
    sim = FleetSimulation(FLEET, load_scenario("district_outage"), 1, START_S)
    assert sim.outages(START_S + 12 * 3600) == set()
    cut = sim.outages(START_S + 14 * 3600)
    assert cut == {d.device_id for d in FLEET if d.district == "luqiao"}
    outages = [r for r in sim.ground_truth(START_S + 20 * 3600) if r.what == "device_outage"]
    assert {r.detail for r in outages} == {"cause=network"}
    assert {r.device_id for r in outages} == cut
    assert {(r.start_s, r.end_s) for r in outages} == {(START_S + 13 * 3600, START_S + 16 * 3600)}


def test_scenario_repeats_after_its_period() -> None:
    sim = FleetSimulation(FLEET, load_scenario("district_outage"), 1, START_S)
    assert sim.outages(START_S + (24 + 14) * 3600)


def test_drivers_probe_their_link_as_the_outages_say() -> None:
    sim = FleetSimulation(FLEET, load_scenario("district_outage"), 1, START_S)
    drivers = sim.drivers()
    assert all(isinstance(d, LinkProbe) for d in drivers)
    # Edges of the 13:00-16:00 window, and the same window in the next period (it repeats).
    for at_s in (12.99, 13.0, 15.99, 16.0, 24 + 14.0):
        at = START_S + at_s * 3600
        assert {d.device_id for d in drivers if not d.link_up(at)} == sim.outages(at)
    assert not sim.outages(START_S + 16 * 3600)
    assert len(sim.outages(START_S + 13 * 3600)) == 20


def test_readings_are_reported_to_a_fixed_resolution() -> None:
    sim = FleetSimulation(FLEET, load_scenario("sensor_faults"), 1, START_S)
    decimals = {"nh3_mgm3": 4, "h2s_mgm3": 5, "temperature_c": 3, "fill_kitchen_pct": 2,
                "weight_kg": 2, "water_l": 3, "battery_v": 4}  # fmt: skip
    seen = set()
    for minute in (61, 200, 377):
        for reading in sim.read_all(START_S + minute * 60).values():
            if isinstance(reading, DriverError):
                continue
            for metric, places in decimals.items():
                if metric in reading:
                    seen.add(metric)
                    assert round(reading[metric], places) == reading[metric], (metric, reading)
    assert seen == set(decimals)
