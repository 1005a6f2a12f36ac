"""Taizhou's nine districts: two-letter codes, approximate centres and ground levels.

Centres are rounded public map coordinates of each district's seat; ground levels are rough
figures (coastal plain around 4 m, inland basins higher) used only to make elevations plausible.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from firmware_sim.errors import FleetError
from telemetry_core.topics import TAIZHOU_DISTRICTS


@dataclass(frozen=True, slots=True)
class District:
    """One district as the simulator places devices in it."""

    name: str
    code: str
    lat: float
    lon: float
    ground_m: float
    radius_km: float


DISTRICTS: Final = MappingProxyType(
    {
        d.name: d
        for d in (
            District("jiaojiang", "jj", 28.680, 121.440, 3.5, 6.0),
            District("huangyan", "hy", 28.650, 121.260, 6.0, 5.0),
            District("luqiao", "lq", 28.580, 121.370, 3.8, 5.0),
            District("linhai", "lh", 28.860, 121.140, 8.0, 5.0),
            District("wenling", "wl", 28.370, 121.390, 4.0, 6.0),
            District("yuhuan", "yh", 28.140, 121.230, 4.5, 4.0),
            District("tiantai", "tt", 29.140, 121.010, 60.0, 4.0),
            District("xianju", "xj", 28.850, 120.730, 55.0, 4.0),
            District("sanmen", "sm", 29.100, 121.400, 4.2, 4.0),
        )
    }
)
assert tuple(DISTRICTS) == TAIZHOU_DISTRICTS  # noqa: S101 - the table must track the contract


def district(name: str) -> District:
    """The district called ``name``; ``FleetError`` naming the valid ones otherwise."""
    found = DISTRICTS.get(name)
    if found is None:
        raise FleetError(f"unknown district {name!r}; want one of {', '.join(DISTRICTS)}")
    return found


def district_of_code(code: str) -> District:
    """The district with the two-letter ``code``."""
    for d in DISTRICTS.values():
        if d.code == code:
            return d
    raise FleetError(f"unknown district code {code!r}")
