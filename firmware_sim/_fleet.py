"""Fleets: plausible devices spread over Taizhou's districts, deterministic under a seed."""

from __future__ import annotations

import math

import numpy as np

from firmware_sim._geo import DISTRICTS, District, district
from firmware_sim._network import Network, generate_network
from firmware_sim.errors import FleetError
from telemetry_core.kinds import WASTE_CATEGORIES, DeviceKind
from telemetry_core.registry import Device

DEFAULT_NODES_PER_DISTRICT = 40
"""Modelled SWMM junctions per district; drain devices are spread over them round-robin."""
PREFIX = {
    DeviceKind.DRAIN: "dr", DeviceKind.TOILET: "wc", DeviceKind.GARBAGE: "gb",
    DeviceKind.RAIN: "rg",
}  # fmt: skip
MIX = {DeviceKind.DRAIN: 0.40, DeviceKind.TOILET: 0.15, DeviceKind.GARBAGE: 0.45}
"""Share of each kind in a mixed fleet: many kiosks and drain sensors, fewer toilets."""
RAIN_GAUGES_PER_DEVICES = 200
"""A mixed fleet has one rain gauge per this many devices of a district: two to twelve of them."""
RAIN_GAUGE_RADIUS_KM = 3.0
"""Gauges stand in the built-up area around the district centre, where the modelled network is."""
EXPECTED_INTERVAL_S = 60.0
M_PER_DEG_LAT = 111_320.0


def offset_latlon(d: District, east_m: float, north_m: float) -> tuple[float, float]:
    """Latitude and longitude of a point ``east_m``, ``north_m`` from the district centre."""
    lat = d.lat + north_m / M_PER_DEG_LAT
    lon = d.lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(d.lat)))
    return round(lat, 6), round(lon, 6)


def _drain(
    d: District, net: Network, n: int, rng: np.random.Generator
) -> tuple[tuple[float, float], dict[str, float | str]]:
    junction = net.junctions[n % len(net.junctions)]
    conduit = next(c for c in net.conduits if c.upstream == junction.name)
    # The modelled network sits around the district centre; jitter keeps co-located sensors apart.
    east = junction.x_m + float(rng.normal(0, 4))
    north = junction.y_m + float(rng.normal(0, 4))
    attrs: dict[str, float | str] = {
        "swmm_node": junction.name,
        "network_nodes": float(len(net.junctions)),
        "pipe_diameter_m": conduit.diameter_m,
        "invert_elev_m": junction.invert_m,
        "ground_elev_m": junction.ground_m,
    }
    return offset_latlon(d, east, north), attrs


def _gauges_per_district(count: int, places: int, kind: DeviceKind | None) -> int:
    """Rain gauges per district: all devices of a rain-only fleet; two to twelve in a mix."""
    per_district = math.ceil(count / places)
    if kind is DeviceKind.RAIN:
        return per_district
    if kind is not None or per_district < 20:
        return 0
    return min(12, max(2, per_district // RAIN_GAUGES_PER_DEVICES))


def _scatter(
    d: District, rng: np.random.Generator, radius_km: float | None = None
) -> tuple[float, float]:
    r = min(d.radius_km, radius_km or d.radius_km) * 1000 * math.sqrt(float(rng.uniform(0, 1)))
    angle = float(rng.uniform(0, 2 * math.pi))
    return offset_latlon(d, r * math.cos(angle), r * math.sin(angle))


def _toilet(rng: np.random.Generator) -> dict[str, float | str]:
    return {
        "stalls": float(rng.integers(4, 17)),
        "toilet_class": float(rng.choice([1, 2, 3], p=[0.25, 0.5, 0.25])),
    }


def _garbage(rng: np.random.Generator) -> dict[str, float | str]:
    sizes = {"kitchen": (240, 3), "recyclable": (240, 2), "hazardous": (60, 2), "other": (240, 3)}
    return {
        f"bin_{c}_l": float(sizes[c][0] * rng.integers(1, sizes[c][1] + 1))
        for c in WASTE_CATEGORIES
    }


def make_fleet(
    district_name: str | None,
    kind: DeviceKind | None,
    count: int,
    seed: int,
    *,
    nodes_per_district: int = DEFAULT_NODES_PER_DISTRICT,
) -> list[Device]:
    """``count`` devices in one district (or all nine), of one kind (or a mix), fixed by ``seed``.

    Drain devices carry ``swmm_node`` and the geometry of that modelled manhole, so a simulation
    built with the same ``nodes_per_district`` reads their hydraulics.
    """
    if count < 0:
        raise FleetError(f"count must be >= 0, got {count}")
    places = [district(district_name)] if district_name else list(DISTRICTS.values())
    rng = np.random.default_rng(seed)
    kind = None if kind is None else DeviceKind(kind)
    kinds = list(MIX) if kind is None or kind is DeviceKind.RAIN else [kind]
    weights = np.array([MIX[k] for k in kinds]) / sum(MIX[k] for k in kinds)
    networks: dict[str, Network] = {}
    counters: dict[tuple[str, DeviceKind], int] = {}
    devices = []
    gauges = _gauges_per_district(count, len(places), kind)
    for i in range(count):
        d = places[i % len(places)]
        k = kinds[int(rng.choice(len(kinds), p=weights))]
        if counters.get((d.name, DeviceKind.RAIN), 0) < gauges:
            k = DeviceKind.RAIN
        n = counters.get((d.name, k), 0)
        counters[d.name, k] = n + 1
        if k is DeviceKind.DRAIN:
            net = networks.get(d.name) or networks.setdefault(
                d.name, generate_network(d.name, nodes_per_district)
            )
            (lat, lon), attrs = _drain(d, net, n, rng)
        elif k is DeviceKind.RAIN:
            lat, lon = _scatter(d, rng, RAIN_GAUGE_RADIUS_KM)
            attrs = {}
        else:
            lat, lon = _scatter(d, rng)
            attrs = _toilet(rng) if k is DeviceKind.TOILET else _garbage(rng)
        device_id = f"{PREFIX[k]}-{d.code}-{n:06d}"
        devices.append(Device(device_id, k, d.name, lat, lon, EXPECTED_INTERVAL_S, attrs))
    return devices
