"""Taizhou's nine districts: two-letter codes, approximate centres and ground levels.

Centres are rounded public map coordinates of each district's seat; ground levels are rough
figures (coastal plain around 4 m, inland basins higher) used only to make elevations plausible.

Tide: seven districts drain to tidal water (the Jiaojiang estuary and the Ling river's tidal reach,
the coast of Luqiao, Wenling, Yuhuan and Sanmen); Huangyan's town drains to the inland river net
behind sluices, Tiantai and Xianju are in mountain basins. ``tide_amplitude_m`` is the
semi-diurnal (M2, 12.42 h) half-range of the water at the outfalls, about mean sea level (0 m on
the elevation datum), damped from the open coast's (about 2 m) by estuary reaches and sluiced
rivers; ``tide_hw_h`` the hour (UTC, on 1970-01-01) of a high water, so the tide runs on the
wall clock whatever the scenario. Illustrative figures, not tide-table constants.
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
    tide_amplitude_m: float = 0.0
    tide_hw_h: float = 0.0

    @property
    def coastal(self) -> bool:
        """Whether the district's outfalls discharge to tidal water (and so have flap gates)."""
        return self.tide_amplitude_m > 0


DISTRICTS: Final = MappingProxyType(
    {
        d.name: d
        for d in (
            District("jiaojiang", "jj", 28.680, 121.440, 3.5, 6.0, 1.3, 2.0),
            District("huangyan", "hy", 28.650, 121.260, 6.0, 5.0),
            District("luqiao", "lq", 28.580, 121.370, 3.8, 5.0, 1.0, 2.2),
            District("linhai", "lh", 28.860, 121.140, 8.0, 5.0, 1.1, 3.0),
            District("wenling", "wl", 28.370, 121.390, 4.0, 6.0, 1.2, 1.8),
            District("yuhuan", "yh", 28.140, 121.230, 4.5, 4.0, 1.6, 1.6),
            District("tiantai", "tt", 29.140, 121.010, 60.0, 4.0),
            District("xianju", "xj", 28.850, 120.730, 55.0, 4.0),
            District("sanmen", "sm", 29.100, 121.400, 4.2, 4.0, 1.4, 2.1),
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
