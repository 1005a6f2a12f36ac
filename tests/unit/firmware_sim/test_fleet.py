"""Fleets: plausible, deterministic under a seed, and loadable as a registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware_sim import FleetError, make_fleet
from firmware_sim._geo import DISTRICTS
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import load_registry, write_registry_csv
from telemetry_core.topics import TAIZHOU_DISTRICTS


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    assert make_fleet(None, None, 200, 5) == make_fleet(None, None, 200, 5)
    assert make_fleet(None, None, 200, 5) != make_fleet(None, None, 200, 6)


def test_city_fleet_covers_every_district_and_kind() -> None:
    fleet = make_fleet(None, None, 900, 1)
    assert {d.district for d in fleet} == set(TAIZHOU_DISTRICTS)
    assert {d.kind for d in fleet} == set(DeviceKind)
    assert len({d.device_id for d in fleet}) == 900


def test_ids_attributes_and_places() -> None:
    fleet = make_fleet("huangyan", None, 300, 2)
    pattern = re.compile(r"^(dr|wc|gb|rg)-hy-\d{6}$")
    centre = DISTRICTS["huangyan"]
    for d in fleet:
        assert pattern.match(d.device_id)
        assert abs(d.lat - centre.lat) < 0.1
        assert abs(d.lon - centre.lon) < 0.1
        assert d.expected_interval_s == 60.0
        if d.kind is DeviceKind.DRAIN:
            assert d.attr("ground_elev_m") - d.attr("invert_elev_m") > d.attr("pipe_diameter_m")
        elif d.kind is DeviceKind.TOILET:
            assert d.attr("toilet_class") in (1, 2, 3)
            assert d.attr("stalls") >= 1
        elif d.kind is DeviceKind.GARBAGE:
            assert all(
                d.attr(f"bin_{c}_l") > 0 for c in ("kitchen", "recyclable", "hazardous", "other")
            )


def test_one_kind_only() -> None:
    assert {d.kind for d in make_fleet("sanmen", DeviceKind.TOILET, 20, 3)} == {DeviceKind.TOILET}


def test_registry_round_trip(tmp_path: Path) -> None:
    fleet = make_fleet(None, None, 60, 4)
    path = tmp_path / "fleet.csv"
    write_registry_csv(fleet, path)
    loaded = list(load_registry(path))
    assert [d.device_id for d in loaded] == [d.device_id for d in fleet]
    assert loaded[0].attributes.keys() == fleet[0].attributes.keys()


def test_unknown_district_and_negative_count() -> None:
    with pytest.raises(FleetError, match="atlantis"):
        make_fleet("atlantis", None, 1, 0)
    with pytest.raises(FleetError, match="count"):
        make_fleet(None, None, -1, 0)
