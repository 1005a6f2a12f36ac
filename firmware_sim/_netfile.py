"""``network.json``: the modelled drainage network of a fleet, and which device reads which node.

Format (version 1): ``nodes`` (each junction and outfall with id, district, kind, lat/lon,
elevations, pipe diameter and its one ``downstream`` node, ``null`` for an outfall), ``devices``
(drain device id -> node id; several devices may share a node) and ``rain_gauges`` (id -> lat/lon).
Each node also carries what a city's pipe and catchment registers say about its capacity: the
outgoing pipe's full-flow Manning capacity ``capacity_m3s`` (``null`` for an outfall), the area
draining to it, its own subcatchment and every one upstream, ``upstream_area_ha``, and that area's
mean runoff coefficient ``runoff_coeff`` (area-weighted, GB 50014's composite from the
impervious share: 0.35 for wet green land up to 0.95 for roofs and roads).
A junction also gives what the pipe register holds of its outgoing pipe: ``pipe_length_m`` and
``pipe_slope`` (fall over length, from the inlet and outlet inverts). A coastal outfall gives
``stage_m``, the water level its tide gauge or tide table says it discharges against at high water
(mean sea level plus the district's tidal half-range; ``null`` for a free outfall inland).
Node ids are ``<district code>-<name>``, e.g. ``jj-J012``; the registry's ``swmm_node`` is the name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firmware_sim._drain import network_size, node_of
from firmware_sim._fleet import DEFAULT_NODES_PER_DISTRICT, offset_latlon
from firmware_sim._geo import district
from firmware_sim._network import Network, generate_network
from firmware_sim._tide import MEAN_SEA_LEVEL_M
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device

NETWORK_FILE_VERSION = 1


def _node_id(net: Network, name: str) -> str:
    return f"{district(net.district).code}-{name}"


def runoff_coeff(imperv_pct: float) -> float:
    """GB 50014's composite runoff coefficient of a subcatchment from its impervious share."""
    return 0.35 + 0.6 * imperv_pct / 100.0


def _catchments(net: Network) -> dict[str, tuple[float, float]]:
    """Per node (junction or outfall): upstream area (ha) and its mean runoff coefficient."""
    out = net.outgoing()
    acc = {n: [0.0, 0.0] for n in [j.name for j in net.junctions] + [o.name for o in net.outfalls]}
    for j in net.junctions:
        node: str | None = j.name
        while node is not None:
            acc[node][0] += j.area_ha
            acc[node][1] += j.area_ha * runoff_coeff(j.imperv_pct)
            node = out[node].downstream if node in out else None
    return {n: (round(a, 3), round(ca / a, 3) if a > 0 else 0.0) for n, (a, ca) in acc.items()}


def _nodes(net: Network) -> list[dict[str, Any]]:
    info = district(net.district)
    out = net.outgoing()
    catch = _catchments(net)
    rows: list[dict[str, Any]] = []
    for j in net.junctions:
        lat, lon = offset_latlon(info, j.x_m, j.y_m)
        area, coeff = catch[j.name]
        rows.append({
            "id": _node_id(net, j.name), "district": net.district, "kind": "junction",
            "lat": lat, "lon": lon, "invert_elev_m": j.invert_m, "ground_elev_m": j.ground_m,
            "max_depth_m": round(j.max_depth_m, 3), "pipe_diameter_m": out[j.name].diameter_m,
            "downstream": _node_id(net, out[j.name].downstream),
            "capacity_m3s": round(out[j.name].full_capacity_m3s(), 4),
            "upstream_area_ha": area, "runoff_coeff": coeff,
            "pipe_length_m": out[j.name].length_m, "pipe_slope": round(out[j.name].slope, 6),
        })  # fmt: skip
    for o in net.outfalls:
        lat, lon = offset_latlon(info, o.x_m, o.y_m)
        into = max(c.diameter_m for c in net.conduits if c.downstream == o.name)
        area, coeff = catch[o.name]
        rows.append({
            "id": _node_id(net, o.name), "district": net.district, "kind": "outfall",
            "lat": lat, "lon": lon, "invert_elev_m": round(o.invert_m, 3),
            "ground_elev_m": info.ground_m, "max_depth_m": round(info.ground_m - o.invert_m, 3),
            "pipe_diameter_m": into, "downstream": None,
            "capacity_m3s": None, "upstream_area_ha": area, "runoff_coeff": coeff,
            "stage_m": round(MEAN_SEA_LEVEL_M + info.tide_amplitude_m, 3) if info.coastal else None,
        })  # fmt: skip
    return rows


def network_document(
    fleet: Sequence[Device], nodes_per_district: int = DEFAULT_NODES_PER_DISTRICT
) -> dict[str, Any]:
    """The ``network.json`` content for ``fleet`` (networks as the fleet's drains were made)."""
    drains = [d for d in fleet if d.kind is DeviceKind.DRAIN]
    names = sorted({d.district for d in drains})
    nets = {n: generate_network(n, network_size(n, drains, nodes_per_district)) for n in names}
    devices = {
        d.device_id: _node_id(
            nets[d.district], nets[d.district].junctions[node_of(d, nets[d.district])].name
        )
        for d in drains
    }
    gauges = {d.device_id: {"lat": d.lat, "lon": d.lon} for d in fleet if d.kind is DeviceKind.RAIN}
    nodes = [row for n in names for row in _nodes(nets[n])]
    return {"version": NETWORK_FILE_VERSION, "nodes": nodes, "devices": devices,
            "rain_gauges": gauges}  # fmt: skip


def write_network(
    fleet: Sequence[Device], path: Path, nodes_per_district: int = DEFAULT_NODES_PER_DISTRICT
) -> int:
    """Write ``network.json`` for ``fleet`` to ``path``; returns how many nodes it holds."""
    doc = network_document(fleet, nodes_per_district)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    return len(doc["nodes"])
