"""The drainage network a city supplies: which node drains into which, and where the rain
gauges are (``network.json``, docs/contract.md "The network file"; ``docs/alerting.md`` says
how to write one).

Each junction drains into exactly one ``downstream`` node (a tree ending in outfalls); drain
devices map to the node they read. The engine uses it to look at a node's neighbours, to group
alerts on connected nodes into one incident, and to find each device's nearest rain gauges.

A node may also say what it can carry (optional; from the city's pipe and catchment registers):
its outgoing pipe's full-flow capacity ``capacity_m3s`` and the area draining to it,
``upstream_area_ha``, with its mean runoff coefficient ``runoff_coeff``. From them the network
precomputes each node's **critical rain intensity**, the rational method inverted
(``Q = C·i·A / 360`` with Q in m³/s, i in mm/h, A in ha): ``i_crit = 360·Q / (C·A)``, the rain at
which the outgoing pipe runs full.

From the pipe register a junction may also give its outgoing pipe's ``pipe_length_m``,
``pipe_slope`` and ``pipe_diameter_m``, and an outfall the ``stage_m`` it discharges against (a
tide gauge's or tide table's high water). A surcharged pipe loses head ``L·S·(Q/Q_full)²`` (Manning:
the friction slope grows with the square of the flow, and equals the bed slope ``S`` at full
flow), so the network precomputes each junction's **full-flow friction head** ``L·S`` and each
node's **water level when it runs full** (an outfall's stage, else its crown).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alerting.errors import NetworkError
from telemetry_core.registry import Device

_EARTH_M = 6_371_000.0
RATIONAL_K = 360.0
"""The rational method's constant: Q [m³/s] = C · i [mm/h] · A [ha] / 360."""


@dataclass(frozen=True, slots=True)
class Node:
    """A modelled manhole (``junction``) or an ``outfall``."""

    id: str
    district: str
    kind: str
    lat: float
    lon: float
    invert_elev_m: float
    ground_elev_m: float
    downstream: str | None
    capacity_m3s: float | None = None
    upstream_area_ha: float | None = None
    runoff_coeff: float | None = None
    pipe_diameter_m: float | None = None
    pipe_length_m: float | None = None
    pipe_slope: float | None = None
    stage_m: float | None = None

    def critical_rain_mmh(self) -> float | None:
        """``360·capacity / (runoff_coeff·upstream_area)``: the rain (mm/h) that fills the
        outgoing pipe; ``None`` without all three."""
        q, area, coeff = self.capacity_m3s, self.upstream_area_ha, self.runoff_coeff
        if q is None or area is None or coeff is None or area <= 0 or coeff <= 0:
            return None
        return RATIONAL_K * q / (coeff * area)

    def friction_head_m(self) -> float | None:
        """``length·slope``: the head the outgoing pipe loses running exactly full; ``None``
        without both."""
        if self.pipe_length_m is None or self.pipe_slope is None:
            return None
        return self.pipe_length_m * self.pipe_slope

    def full_level_m(self) -> float | None:
        """The water level (m on the datum) this node holds when its pipe runs full: an
        outfall's ``stage_m`` if higher than its crown, else the crown (invert + diameter)."""
        crown = None if self.pipe_diameter_m is None else self.invert_elev_m + self.pipe_diameter_m
        if self.stage_m is None or (crown is not None and crown >= self.stage_m):
            return crown
        return self.stage_m


@dataclass(frozen=True, slots=True)
class Network:
    """Nodes, the device → node map, and rain gauge positions; derived look-ups precomputed."""

    nodes: Mapping[str, Node]
    devices: Mapping[str, str]
    rain_gauges: Mapping[str, tuple[float, float]]
    upstream: Mapping[str, tuple[str, ...]] = field(init=False)
    hops_to_outfall: Mapping[str, int] = field(init=False)
    critical_rain: Mapping[str, float] = field(init=False)
    """Each node's critical rain intensity (mm/h), for the nodes that give their capacity."""

    def __post_init__(self) -> None:
        ups: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            if node.downstream is not None:
                ups[node.downstream].append(node.id)
        object.__setattr__(
            self, "upstream", MappingProxyType({k: tuple(sorted(v)) for k, v in ups.items()})
        )
        object.__setattr__(self, "hops_to_outfall", MappingProxyType(self._hops()))
        crit = {n.id: c for n in self.nodes.values() if (c := n.critical_rain_mmh()) is not None}
        object.__setattr__(self, "critical_rain", MappingProxyType(crit))

    def _hops(self) -> dict[str, int]:
        hops: dict[str, int] = {}
        for start in self.nodes:
            path: list[str] = []
            node = start
            while node not in hops:
                down = self.nodes[node].downstream
                if down is None:
                    hops[node] = 0
                    break
                path.append(node)
                if len(path) > len(self.nodes):
                    raise NetworkError(f"node {start!r} drains in a loop, not to an outfall")
                node = down
            for k, p in enumerate(reversed(path), 1):
                hops[p] = hops[node] + k
        return hops

    def node_of(self, device_id: str) -> str | None:
        """The node a drain device reads, or ``None``."""
        return self.devices.get(device_id)

    def nearest_gauges(self, lat: float, lon: float, k: int) -> tuple[str, ...]:
        """The ``k`` rain gauges nearest to a point, nearest first."""
        ranked = sorted(
            self.rain_gauges, key=lambda g: (_dist_m(lat, lon, *self.rain_gauges[g]), g)
        )
        return tuple(ranked[:k])


def _dist_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return _EARTH_M * math.hypot(x, y)


def load_network(path: Path) -> Network:
    """Read a ``network.json``; ``NetworkError`` names the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NetworkError(f"{path}: cannot read a network file: {exc}") from exc
    try:
        return network_from_dict(data)
    except NetworkError as exc:
        raise NetworkError(f"{path}: {exc}") from exc


def network_from_dict(data: Any) -> Network:
    """A network from the parsed JSON of a network file."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise NetworkError('want an object with "version": 1')
    nodes: dict[str, Node] = {}
    for i, raw in enumerate(data.get("nodes") or []):
        node = _node(i, raw)
        if node.id in nodes:
            raise NetworkError(f"nodes[{i}]: duplicate node id {node.id!r}")
        nodes[node.id] = node
    for node in nodes.values():
        if node.downstream is not None and node.downstream not in nodes:
            raise NetworkError(f"node {node.id!r}: downstream {node.downstream!r} is not a node")
    devices = {str(k): str(v) for k, v in (data.get("devices") or {}).items()}
    for dev, node_id in devices.items():
        if node_id not in nodes:
            raise NetworkError(f"devices: {dev!r} reads {node_id!r}, which is not a node")
    gauges = {
        str(g): (float(p["lat"]), float(p["lon"]))
        for g, p in (data.get("rain_gauges") or {}).items()
    }
    return Network(MappingProxyType(nodes), MappingProxyType(devices), MappingProxyType(gauges))


def _node(i: int, raw: Any) -> Node:
    try:
        return Node(
            id=str(raw["id"]), district=str(raw.get("district", "")), kind=str(raw["kind"]),
            lat=float(raw["lat"]), lon=float(raw["lon"]),
            invert_elev_m=float(raw["invert_elev_m"]), ground_elev_m=float(raw["ground_elev_m"]),
            downstream=None if raw.get("downstream") is None else str(raw["downstream"]),
            capacity_m3s=_optional(i, raw, "capacity_m3s"),
            upstream_area_ha=_optional(i, raw, "upstream_area_ha"),
            runoff_coeff=_optional(i, raw, "runoff_coeff", high=1.0),
            pipe_diameter_m=_optional(i, raw, "pipe_diameter_m"),
            pipe_length_m=_optional(i, raw, "pipe_length_m"),
            pipe_slope=_optional(i, raw, "pipe_slope", high=1.0),
            stage_m=_optional(i, raw, "stage_m", low=-math.inf),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise NetworkError(f"nodes[{i}]: {exc!r}") from exc


def _optional(
    i: int, raw: Any, name: str, high: float = math.inf, low: float = 0.0
) -> float | None:
    """An optional number in ``[low, high]`` (non-negative by default) of a node, or ``None``."""
    value = raw.get(name)
    if value is None:
        return None
    x = float(value)
    if not low <= x <= high or math.isnan(x):
        raise NetworkError(
            f"nodes[{i}] ({raw.get('id')!r}): {name} {x} is outside [{low:g}, {high:g}]"
        )
    return x


def network_from_registry(devices: Iterable[Device]) -> Network | None:
    """Without a network file: nodes from the registry's ``swmm_node`` attributes, with no
    downstream links (so no neighbour conditions), and rain gauges from ``rain`` devices."""
    nodes: dict[str, Node] = {}
    mapping: dict[str, str] = {}
    gauges: dict[str, tuple[float, float]] = {}
    for d in devices:
        if d.kind.value == "rain":
            gauges[d.device_id] = (d.lat, d.lon)
        node = d.attributes.get("swmm_node")
        if isinstance(node, str):
            mapping[d.device_id] = node
            nodes.setdefault(node, Node(node, d.district, "junction", d.lat, d.lon, 0.0, 0.0, None))
    if not nodes and not gauges:
        return None
    return Network(MappingProxyType(nodes), MappingProxyType(mapping), MappingProxyType(gauges))
