"""A generated, plausible storm-and-sewer network for one district: catchments, trunks, outfalls.

A district's network is split into catchments of about ``CATCHMENT_NODES`` manholes, each a trunk
with branches of two to four manholes and its own outfall, side by side around the district
centre (coordinates are metres east and north of it). Pipes are sized the way a designer would:
the rational method with GB 50014's storm intensity for the pipe's design return period and
today's runoff coefficient, a time of concentration of 10 minutes' inlet time plus the travel time
at 1 m/s along the longest path upstream, then the smallest standard diameter whose full-pipe
Manning capacity carries it. Capacity therefore differs across the network: branches designed for
half a year overflow in a typhoon while trunks designed for three to five years merely surcharge,
and a storm no rarer than a pipe's design return period stays in it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from firmware_sim._geo import district
from firmware_sim._rain import storm_intensity_lsha

STANDARD_DIAMETERS_M = (
    0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.35, 1.5, 1.65, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.5
)  # fmt: skip
MANNING_N = 0.013
COVER_M = 0.7
DWF_M3S_PER_HA = 0.0004
"""Average sanitary flow per hectare: about 150 people per ha at 230 L/day each."""
CATCHMENT_NODES = 45
"""About how many manholes drain to one outfall; larger networks get more catchments."""
CATCHMENT_GAP_M = 900.0
"""Distance between neighbouring catchments' trunks."""
INLET_MIN = 10.0
TRAVEL_MS = 1.0
TRUNK_RETURN_Y = (3.0, 3.0, 5.0)
BRANCH_RETURN_Y = (0.25, 0.33, 0.5, 0.5, 1.0, 2.0)
"""Today's worth of branches: old ones, built to half a year for a less paved catchment, now hold a
quarter to a third of a year's storm; newer ones half a year to two years (GB 50014)."""


@dataclass(frozen=True, slots=True)
class Junction:
    """A manhole: where a drain node sensor can sit."""

    name: str
    x_m: float
    y_m: float
    invert_m: float
    ground_m: float
    area_ha: float
    imperv_pct: float
    dwf_m3s: float
    design_return_y: float
    """The return period the pipe leaving this manhole was sized for (today's catchment)."""

    @property
    def max_depth_m(self) -> float:
        """Depth from invert to ground: the water level at which the manhole overflows."""
        return self.ground_m - self.invert_m


@dataclass(frozen=True, slots=True)
class Conduit:
    """A circular pipe from ``upstream`` to ``downstream`` (a junction or the outfall)."""

    name: str
    upstream: str
    downstream: str
    length_m: float
    diameter_m: float
    slope: float

    def full_capacity_m3s(self) -> float:
        """Full-pipe Manning capacity."""
        return full_capacity_m3s(self.diameter_m, self.slope)


@dataclass(frozen=True, slots=True)
class Outfall:
    """Where a catchment's trunk discharges (a river, the estuary or the sea)."""

    name: str
    x_m: float
    y_m: float
    invert_m: float


@dataclass(frozen=True, slots=True)
class Network:
    """One district's network: every junction has exactly one outgoing conduit (a forest)."""

    district: str
    junctions: tuple[Junction, ...]
    conduits: tuple[Conduit, ...]
    outfalls: tuple[Outfall, ...]

    def outgoing(self) -> dict[str, Conduit]:
        """Each junction's outgoing conduit, by junction name."""
        return {c.upstream: c for c in self.conduits}

    def upstream_dwf_m3s(self) -> dict[str, float]:
        """Mean dry-weather flow leaving each junction: its own plus all upstream."""
        out = self.outgoing()
        acc = dict.fromkeys((j.name for j in self.junctions), 0.0)
        for j in self.junctions:
            node = j.name
            while node in out:
                acc[node] += j.dwf_m3s
                node = out[node].downstream
        return acc


def full_capacity_m3s(diameter_m: float, slope: float) -> float:
    """Manning full-pipe capacity of a circular pipe."""
    area = math.pi * diameter_m**2 / 4
    radius = diameter_m / 4
    return float(area * radius ** (2 / 3) * math.sqrt(slope) / MANNING_N)


def _min_slope(diameter_m: float) -> float:
    # Self-cleansing minimum slopes, roughly as GB 50014 tabulates (D300: 0.3 %).
    return max(0.0005, 0.0009 / diameter_m)


def _size_pipe(flow_m3s: float, terrain_slope: float) -> tuple[float, float]:
    for d in STANDARD_DIAMETERS_M:
        s = max(terrain_slope, _min_slope(d))
        if full_capacity_m3s(d, s) >= flow_m3s:
            return d, s
    d = STANDARD_DIAMETERS_M[-1]
    return d, max(terrain_slope, _min_slope(d))


@dataclass(slots=True)
class _Draft:
    name: str
    x: float
    y: float
    down: str
    length: float
    area: float
    imperv: float
    design_p: float
    trunk: bool


def _catchment(
    first: int, n: int, y0: float, outfall: str, *, rng: np.random.Generator, min_p: float
) -> list[_Draft]:
    """One catchment of ``n`` manholes numbered from ``first``: a trunk along x, then branches."""
    n_trunk = max(2, n // 3)
    spacing = float(rng.uniform(90, 140))
    trunk_p = max(min_p, float(rng.choice(TRUNK_RETURN_Y)))
    drafts = [
        _Draft(f"J{first + i:03d}", i * spacing, y0, f"J{first + i + 1:03d}", spacing,
               0.0, 0.0, trunk_p, trunk=True)
        for i in range(n_trunk)
    ]  # fmt: skip
    drafts[-1].down = outfall
    idx, side = first + n_trunk, 1.0
    while idx < first + n:
        length = min(int(rng.integers(2, 5)), first + n - idx)
        attach = drafts[int(rng.integers(0, n_trunk))]
        p = max(min_p, float(rng.choice(BRANCH_RETURN_Y)))
        down = attach.name
        for k in range(length):
            step = float(rng.uniform(60, 110))
            y = y0 + side * step * (k + 1)
            drafts.append(_Draft(f"J{idx:03d}", attach.x, y, down, step, 0, 0, p, trunk=False))
            down = f"J{idx:03d}"
            idx += 1
        side = -side
    return drafts


def _layout(
    n: int, rng: np.random.Generator, min_p: float
) -> tuple[list[_Draft], list[tuple[str, float, float]]]:
    """Drafts of all catchments, centred on the district centre, and their outfalls (x, y)."""
    count = max(1, round(n / CATCHMENT_NODES))
    sizes = [n // count + (1 if c < n % count else 0) for c in range(count)]
    drafts: list[_Draft] = []
    outfalls = []
    for c, size in enumerate(sizes):
        y0 = (c - (count - 1) / 2) * CATCHMENT_GAP_M
        part = _catchment(len(drafts), size, y0, f"OUT{c}", rng=rng, min_p=min_p)
        end = max(d.x for d in part) + part[0].length
        outfalls.append((f"OUT{c}", end, y0))
        drafts += part
    shift = max(x for _, x, _ in outfalls) / 2
    for d in drafts:
        d.x -= shift
        d.area = float(rng.uniform(0.8, 2.6))
        d.imperv = float(rng.uniform(55, 88))
    return drafts, [(name, x - shift, y) for name, x, y in outfalls]


def _accumulate(drafts: list[_Draft]) -> dict[str, tuple[float, float, float]]:
    """Per junction: upstream area (ha), area-weighted runoff coefficient, travel time (min)."""
    by_name = {d.name: d for d in drafts}
    acc: dict[str, list[float]] = {d.name: [0.0, 0.0, 0.0] for d in drafts}
    for d in drafts:
        # GB 50014 runoff coefficients: roofs and roads 0.85-0.95; wet green land in a design storm
        psi = 0.35 + 0.6 * d.imperv / 100
        node, path_m = d.name, 0.0
        while node in by_name:
            acc[node][0] += d.area
            acc[node][1] += d.area * psi
            acc[node][2] = max(acc[node][2], path_m)
            path_m += by_name[node].length
            node = by_name[node].down
    return {k: (v[0], v[1] / v[0], v[2] / TRAVEL_MS / 60.0) for k, v in acc.items()}


def generate_network(district_name: str, n_junctions: int, *, min_return_y: float = 0.0) -> Network:
    """The network of ``district_name`` with ``n_junctions`` manholes; deterministic per input.

    ``min_return_y`` raises every pipe's design return period to at least that (for tests and
    for a city that builds to a standard).
    """
    if n_junctions < 3:
        raise ValueError(f"a network needs at least 3 junctions, got {n_junctions}")
    info = district(district_name)
    rng = np.random.default_rng(zlib.crc32(f"{district_name}/{n_junctions}".encode()))
    drafts, outfalls = _layout(n_junctions, rng, min_return_y)
    acc = _accumulate(drafts)
    grade = float(rng.uniform(0.001, 0.003))
    sized = {}
    for d in drafts:
        area, psi, travel_min = acc[d.name]
        q = psi * storm_intensity_lsha(d.design_p, INLET_MIN + travel_min) * area / 1000.0
        q += 2.5 * DWF_M3S_PER_HA * area
        sized[d.name] = _size_pipe(q, grade)
    inverts: dict[str, float] = {name: info.ground_m - 2.6 for name, _, _ in outfalls}
    # Trunks first (downstream to upstream), then branches in order: downstreams are placed first.
    order = [d for d in reversed(drafts) if d.trunk] + [d for d in drafts if not d.trunk]
    for d in order:
        dia, slope = sized[d.name]
        down_crown = inverts[d.down] + (sized[d.down][0] if d.down in sized else dia)
        # Crowns line up at junctions (a smaller pipe never enters below a larger pipe's crown).
        inverts[d.name] = max(inverts[d.down] + slope * d.length, down_crown - dia + 0.01)
    falls = tuple(Outfall(name, round(x, 1), round(y, 1), inverts[name]) for name, x, y in outfalls)
    return _assemble(district_name, drafts=drafts, sized=sized, inverts=inverts, outfalls=falls,
                     rng=rng)  # fmt: skip


def _assemble(
    district_name: str,
    *,
    drafts: list[_Draft],
    sized: dict[str, tuple[float, float]],
    inverts: dict[str, float],
    outfalls: tuple[Outfall, ...],
    rng: np.random.Generator,
) -> Network:
    base = district(district_name).ground_m
    by_name = {d.name: d for d in drafts}
    junctions, conduits = [], []
    for d in drafts:
        dia = sized[d.name][0]
        node, path_m = d.name, 0.0
        while node in by_name:
            path_m += by_name[node].length
            node = by_name[node].down
        terrain = base + 0.0012 * path_m + float(rng.normal(0, 0.15))
        ground = max(terrain, inverts[d.name] + dia + COVER_M)
        junctions.append(
            Junction(d.name, round(d.x, 1), round(d.y, 1), round(inverts[d.name], 3),
                     round(ground, 3), round(d.area, 3), round(d.imperv, 1),
                     round(DWF_M3S_PER_HA * d.area, 6), d.design_p)
        )  # fmt: skip
        drop = inverts[d.name] - inverts[d.down]
        conduits.append(
            Conduit(f"C{d.name[1:]}", d.name, d.down, round(d.length, 1), dia, drop / d.length)
        )
    return Network(district_name, tuple(junctions), tuple(conduits), outfalls)
