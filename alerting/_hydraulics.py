"""Hydraulic grade lines from the network file: what a node's water surface will be when its
pipes carry a given load. Pure functions of precomputed per-node constants.

Manning: a circular pipe running exactly full loses its bed slope ``S`` over its length ``L``;
carrying ``Q`` it loses ``L·S·(Q/Q_full)²``. Under surcharge the water surface at a node is
therefore the surface at the node below plus that friction head (velocity head and the
manholes' minor losses are left out: a few centimetres at these speeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from alerting._network import Network


@dataclass(frozen=True, slots=True)
class HeadConstants:
    """What ``head`` needs of one node, precomputed at load: the node below, how its level
    becomes a water surface, and the outgoing pipe's friction head, capacity and i_crit."""

    below: str
    below_invert_m: float
    below_full_m: float | None
    """The level of the node below when it has no reading: an outfall's stage or crown."""
    friction_m: float
    capacity_m3s: float
    i_crit_mmh: float
    ground_m: float


def head_constants(net: Network, node: str) -> HeadConstants | None:
    """The constants of ``node`` for ``head``; ``None`` where the network file lacks them."""
    here = net.nodes[node]
    friction, i_crit = here.friction_head_m(), net.critical_rain.get(node)
    if here.downstream is None or friction is None or i_crit is None or not here.capacity_m3s:
        return None
    below = net.nodes[here.downstream]
    full = below.full_level_m() if below.kind == "outfall" else None
    return HeadConstants(below.id, below.invert_elev_m, full, friction, here.capacity_m3s,
                         i_crit, here.ground_elev_m)  # fmt: skip


def predicted_surface_m(c: HeadConstants, below_level_m: float, load: float) -> float:
    """The water surface (m on the datum) a node holds with the node below at
    ``below_level_m`` (over its invert) and its outgoing pipe carrying ``load`` × its full-flow
    capacity: the level below plus the friction head ``L·S·load²``."""
    return c.below_invert_m + below_level_m + c.friction_m * load * load


@dataclass(frozen=True, slots=True)
class PathPipe:
    """One pipe on the way from a node to its outfall: the node it leaves and its constants."""

    node: str
    lat: float
    lon: float
    friction_m: float
    i_crit_mmh: float
    invert_m: float
    diameter_m: float


def path_constants(net: Network, node: str) -> tuple[float, tuple[PathPipe, ...]] | None:
    """The outfall's full level and the pipes from it up to ``node`` (outfall end first);
    ``None`` if a pipe on the way lacks length, slope, diameter or critical intensity, or the
    outfall its level."""
    pipes: list[PathPipe] = []
    here = net.nodes[node]
    while here.downstream is not None:
        friction, i_crit = here.friction_head_m(), net.critical_rain.get(here.id)
        if friction is None or i_crit is None or here.pipe_diameter_m is None:
            return None
        pipes.append(PathPipe(here.id, here.lat, here.lon, friction, i_crit,
                              here.invert_elev_m, here.pipe_diameter_m))  # fmt: skip
        here = net.nodes[here.downstream]
    base = here.full_level_m()
    if base is None or not pipes:
        return None
    return base, tuple(reversed(pipes))


def steady_surface_m(base_m: float, pipes: tuple[PathPipe, ...], loads: list[float]) -> float:
    """The steady water surface at the last node of ``pipes`` with each pipe carrying its
    ``load`` × full-flow capacity: from the outfall's level up, each node stands at the node
    below plus the pipe's friction head, or at its own flow depth if that is higher (a pipe not
    yet full: the depth grows with the load, full at 1)."""
    surface = base_m
    for pipe, load in zip(pipes, loads, strict=True):
        backwater = surface + pipe.friction_m * load * load
        surface = max(backwater, pipe.invert_m + min(load, 1.0) * pipe.diameter_m)
    return surface
