"""A generated, plausible storm-and-sewer network for one district: a trunk, branches, an outfall.

Pipes are sized the way a designer would (rational method with GB 50014's storm intensity for a
return period chosen per branch, then the smallest standard diameter whose full-pipe Manning
capacity carries it), so capacity differs across the network: old branches designed for half a
year overflow in a typhoon while trunks designed for three years merely surcharge.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from firmware_sim._geo import district
from firmware_sim._rain import storm_intensity_lsha

STANDARD_DIAMETERS_M = (0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.35, 1.5, 1.65, 1.8, 2.0, 2.2, 2.4)
MANNING_N = 0.013
COVER_M = 0.7
DWF_M3S_PER_HA = 0.0004
"""Average sanitary flow per hectare: about 150 people per ha at 230 L/day each."""


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
class Network:
    """One district's network. Every junction has exactly one outgoing conduit (a tree)."""

    district: str
    junctions: tuple[Junction, ...]
    conduits: tuple[Conduit, ...]
    outfall: str
    outfall_invert_m: float
    outfall_x_m: float

    def outgoing(self) -> dict[str, Conduit]:
        """Each junction's outgoing conduit, by junction name."""
        return {c.upstream: c for c in self.conduits}

    def upstream_dwf_m3s(self) -> dict[str, float]:
        """Mean dry-weather flow leaving each junction: its own plus all upstream."""
        out = self.outgoing()
        total = {j.name: j.dwf_m3s for j in self.junctions}
        # Junctions are generated upstream-before-downstream within each path, but branches attach
        # anywhere, so accumulate by walking each junction's path to the outfall.
        acc = dict.fromkeys(total, 0.0)
        for name, q in total.items():
            node = name
            while node in out:
                acc[node] += q
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


def _layout(n: int, rng: np.random.Generator) -> tuple[list[_Draft], float]:
    n_trunk = max(2, n // 3)
    spacing = float(rng.uniform(90, 140))
    drafts = [
        _Draft(f"J{i:03d}", i * spacing, 0.0, f"J{i + 1:03d}", spacing, 0.0, 0.0, 3.0)
        for i in range(n_trunk)
    ]
    drafts[-1].down = "OUT"
    idx = n_trunk
    side = 1.0
    while idx < n:
        length = min(int(rng.integers(2, 5)), n - idx)
        attach = drafts[int(rng.integers(0, n_trunk))]
        p = float(rng.choice([0.5, 0.5, 1.0, 2.0, 3.0]))  # older branches were built to 0.5 y
        down = attach.name
        for k in range(length):
            step = float(rng.uniform(60, 110))
            y = side * step * (k + 1)
            drafts.append(_Draft(f"J{idx:03d}", attach.x, y, down, step, 0, 0, p))
            down = f"J{idx:03d}"
            idx += 1
        side = -side
    for d in drafts:
        d.area = float(rng.uniform(0.8, 2.6))
        d.imperv = float(rng.uniform(55, 88))
    return drafts, n_trunk * spacing


def _accumulate(drafts: list[_Draft]) -> dict[str, tuple[float, float, int]]:
    """Per junction: upstream area (ha), area-weighted runoff coefficient, node count."""
    by_name = {d.name: d for d in drafts}
    acc: dict[str, list[float]] = {d.name: [0.0, 0.0, 0.0] for d in drafts}
    for d in drafts:
        # Branches were designed when their catchments were less paved than today.
        psi = 0.15 + 0.7 * d.imperv / 100 if d.design_p >= 3.0 else 0.4
        node = d.name
        while node in by_name:
            acc[node][0] += d.area
            acc[node][1] += d.area * psi
            acc[node][2] += 1
            node = by_name[node].down
    return {k: (v[0], v[1] / v[0], int(v[2])) for k, v in acc.items()}


def generate_network(district_name: str, n_junctions: int) -> Network:
    """The network of ``district_name`` with ``n_junctions`` manholes; deterministic per input."""
    if n_junctions < 3:
        raise ValueError(f"a network needs at least 3 junctions, got {n_junctions}")
    info = district(district_name)
    rng = np.random.default_rng(zlib.crc32(f"{district_name}/{n_junctions}".encode()))
    drafts, outfall_x = _layout(n_junctions, rng)
    acc = _accumulate(drafts)
    grade = float(rng.uniform(0.001, 0.003))
    sized = {}
    for d in drafts:
        area, psi, count = acc[d.name]
        minutes = 10.0 + 1.5 * count  # inlet time plus a rough travel time
        q = psi * storm_intensity_lsha(d.design_p, minutes) * area / 1000.0
        q += 2.5 * DWF_M3S_PER_HA * area
        sized[d.name] = _size_pipe(q, grade)
    outfall_invert = info.ground_m - 2.6
    inverts: dict[str, float] = {"OUT": outfall_invert}
    # Trunk first (in reverse), then branches in order: each draft's downstream is already placed.
    order = [d for d in reversed(drafts) if d.y == 0.0] + [d for d in drafts if d.y != 0.0]
    for d in order:
        dia, slope = sized[d.name]
        down_crown = inverts[d.down] + (sized[d.down][0] if d.down in sized else dia)
        # Crowns line up at junctions (a smaller pipe never enters below a larger pipe's crown).
        inverts[d.name] = max(inverts[d.down] + slope * d.length, down_crown - dia + 0.01)
    return _assemble(
        district_name, drafts=drafts, sized=sized, inverts=inverts, outfall_x=outfall_x, rng=rng
    )


def _assemble(
    district_name: str,
    *,
    drafts: list[_Draft],
    sized: dict[str, tuple[float, float]],
    inverts: dict[str, float],
    outfall_x: float,
    rng: np.random.Generator,
) -> Network:
    base = district(district_name).ground_m
    junctions, conduits = [], []
    for d in drafts:
        dia = sized[d.name][0]
        path_m = outfall_x - d.x + abs(d.y)
        terrain = base + 0.0012 * path_m + float(rng.normal(0, 0.15))
        ground = max(terrain, inverts[d.name] + dia + COVER_M)
        junctions.append(
            Junction(
                d.name,
                d.x,
                d.y,
                round(inverts[d.name], 3),
                round(ground, 3),
                round(d.area, 3),
                round(d.imperv, 1),
                round(DWF_M3S_PER_HA * d.area, 6),
                d.design_p,
            )
        )
        drop = inverts[d.name] - inverts[d.down]
        conduits.append(
            Conduit(f"C{d.name[1:]}", d.name, d.down, round(d.length, 1), dia, drop / d.length)
        )
    return Network(
        district_name, tuple(junctions), tuple(conduits), "OUT", inverts["OUT"], outfall_x
    )
