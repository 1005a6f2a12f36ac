"""A SWMM model of the city's drainage network, written from the network file alone, for the
forecast (``_forecast.py``): the same hydraulics a city's own model runs, driven by its gauges.

What the network file gives (docs/contract.md, "The network file") becomes the model:

* each junction a SWMM junction at its invert, as deep as its ground, ponding onto the street;
* each junction's outgoing pipe a circular conduit of its diameter and length from its invert to
  the invert of the node below (Manning's n of concrete);
* each outfall an outfall at its invert, held at its ``stage_m`` (the tide table's high water)
  when it gives one, else free;
* each junction's **own** subcatchment: the area draining to it less what drains to the nodes
  above it (``upstream_area_ha``), its impervious share recovered from the difference of the
  area-weighted runoff coefficients (GB 50014's composite ``0.35 + 0.6 × impervious``);
* each subcatchment's rain from its nearest gauge.

What the file does not give takes SWMM's typical values (the SWMM 5 user's manual, tables A.5,
A.6, A.8): the constants below. Dry-weather (sanitary) flow is left out: in a rainstorm it is a
few per cent of the pipes' load. A city with a calibrated model would put its own parameters in;
the forecast's quality is that model's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from alerting._network import Network

MANNING_N: Final = 0.013
"""Concrete pipe."""
FLOW_LENGTH_M: Final = 200.0
"""Overland flow length: a subcatchment's width is its area over this."""
SLOPE_PCT: Final = 0.8
PONDED_AREA_M2: Final = 400.0
"""Street area around a manhole where water leaving it stands (and later drains back)."""
MIN_SURFAREA_M2: Final = 20.0
"""A modelled manhole's plan area with the gullies and minor pipes it stands for."""
SUBAREAS: Final = "0.013 0.15 1.5 5.0 25 OUTLET"
"""n impervious, n pervious, depression storage (mm) impervious and pervious, % impervious
without depression storage."""
HORTON: Final = "75 6 4 7 0"
"""Max and min infiltration rate (mm/h), decay (1/h), drying time (days), max volume."""
RAIN_STEP_S: Final = 60


@dataclass(frozen=True, slots=True)
class ModelNode:
    """A junction of the model: its id, depth to the ground, its own subcatchment and gauge."""

    id: str
    depth_m: float
    area_ha: float
    impervious_pct: float
    gauge: str


@dataclass(frozen=True, slots=True)
class StaticModel:
    """The parts of the model that do not change with time: written once per network."""

    junctions: tuple[ModelNode, ...]
    gauges: tuple[str, ...]
    text: str
    """Every section but the options, rain gauges and time series."""
    junction_ids: frozenset[str] = frozenset()
    gauge_of: Mapping[str, str] = field(default_factory=dict)
    """Each junction's gauge (its subcatchment's rain)."""


def _complete(net: Network, node_id: str) -> bool:
    n = net.nodes[node_id]
    if n.kind == "outfall":
        return True
    fields = (n.pipe_diameter_m, n.pipe_length_m, n.upstream_area_ha, n.runoff_coeff)
    return n.downstream is not None and all(f is not None for f in fields)


def modelled_districts(net: Network) -> set[str]:
    """The districts whose every node the file describes fully (a partial tree cannot be run)."""
    complete: dict[str, bool] = {}
    for node_id, node in net.nodes.items():
        complete[node.district] = complete.get(node.district, True) and _complete(net, node_id)
    return {d for d, ok in complete.items() if ok}


def static_model(net: Network) -> StaticModel | None:
    """The model of the network's fully described districts; ``None`` if there is none, or no
    rain gauge."""
    districts = modelled_districts(net)
    if not districts or not net.rain_gauges:
        return None
    nodes = [n for n in net.nodes.values() if n.district in districts]
    junctions: list[ModelNode] = []
    lines: dict[str, list[str]] = {k: [] for k in _SECTIONS}
    for n in nodes:
        if n.kind == "outfall":
            fixed = n.stage_m is not None and n.stage_m > n.invert_elev_m
            stage = f"FIXED {n.stage_m:.3f} YES" if fixed else "FREE NO"  # flap-gated
            lines["OUTFALLS"].append(f"{n.id} {n.invert_elev_m:.3f} {stage}")
            continue
        depth = max(n.ground_elev_m - n.invert_elev_m, 0.1)
        lines["JUNCTIONS"].append(f"{n.id} {n.invert_elev_m:.3f} {depth:.3f} 0 0 {PONDED_AREA_M2}")
        conduit = f"P_{n.id}"
        lines["CONDUITS"].append(
            f"{conduit} {n.id} {n.downstream} {n.pipe_length_m:.1f} {MANNING_N} 0 0 0 0"
        )
        lines["XSECTIONS"].append(f"{conduit} CIRCULAR {n.pipe_diameter_m:.3f} 0 0 0 1")
        area, impervious = _own_catchment(net, n.id)
        gauge = net.nearest_gauges(n.lat, n.lon, 1)[0]
        junctions.append(ModelNode(n.id, depth, area, impervious, gauge))
        if area > 0:
            sub = f"S_{n.id}"
            width = area * 10_000 / FLOW_LENGTH_M
            lines["SUBCATCHMENTS"].append(
                f"{sub} {gauge} {n.id} {area:.3f} {impervious:.1f} {width:.1f} {SLOPE_PCT} 0"
            )
            lines["SUBAREAS"].append(f"{sub} {SUBAREAS}")
            lines["INFILTRATION"].append(f"{sub} {HORTON}")
    text = "\n".join(f"[{k}]\n" + "\n".join(v) + "\n" for k, v in lines.items())
    gauges = tuple(sorted({j.gauge for j in junctions}))
    ids = frozenset(j.id for j in junctions)
    return StaticModel(tuple(junctions), gauges, text, ids, {j.id: j.gauge for j in junctions})


_SECTIONS: Final = (
    "JUNCTIONS", "OUTFALLS", "CONDUITS", "XSECTIONS", "SUBCATCHMENTS", "SUBAREAS", "INFILTRATION",
)  # fmt: skip


def _own_catchment(net: Network, node_id: str) -> tuple[float, float]:
    """A junction's own area (ha) and its impervious share (%): what drains to it less what
    drains to the nodes just above it, by area and by runoff coefficient × area."""
    n = net.nodes[node_id]
    area_up, coeff_up = n.upstream_area_ha or 0.0, n.runoff_coeff or 0.0
    above = [net.nodes[u] for u in net.upstream[node_id]]
    area = area_up - sum(u.upstream_area_ha or 0.0 for u in above)
    weighted = area_up * coeff_up - sum((u.upstream_area_ha or 0.0) * (u.runoff_coeff or 0.0)
                                        for u in above)  # fmt: skip
    if area <= 1e-3:
        return 0.0, 0.0
    coeff = weighted / area
    return round(area, 3), round(min(max((coeff - 0.35) / 0.6 * 100.0, 0.0), 100.0), 1)


def _clock(epoch_s: float) -> tuple[str, str]:
    dt = datetime.fromtimestamp(epoch_s, tz=UTC)
    return dt.strftime("%m/%d/%Y"), dt.strftime("%H:%M:%S")


def model_text(
    model: StaticModel,
    start_s: float,
    end_s: float,
    rain_mmh: Mapping[str, Sequence[float]],
    *,
    use_hotstart: str | None = None,
    save_hotstart: str | None = None,
) -> str:
    """The whole input file of one run from ``start_s`` to ``end_s`` (epoch s, UTC as SWMM's
    clock): ``rain_mmh[gauge][k]`` is the intensity over the ``k``-th minute from the start (a
    gauge or a minute not given: no rain)."""
    sd, st = _clock(start_s)
    ed, et = _clock(end_s)
    files = []
    if use_hotstart:
        files.append(f'USE HOTSTART "{use_hotstart}"')
    if save_hotstart:
        files.append(f'SAVE HOTSTART "{save_hotstart}"')
    lines = ["[TITLE]", "Xiuhua alerting forecast", ""]
    if files:
        lines += ["[FILES]", *files, ""]
    lines += [
        "[OPTIONS]", "FLOW_UNITS CMS", "INFILTRATION HORTON", "FLOW_ROUTING DYNWAVE",
        "LINK_OFFSETS DEPTH", "ALLOW_PONDING YES", "SKIP_STEADY_STATE NO",
        f"START_DATE {sd}", f"START_TIME {st}", f"REPORT_START_DATE {sd}",
        f"REPORT_START_TIME {st}", f"END_DATE {ed}", f"END_TIME {et}",
        "WET_STEP 00:01:00", "DRY_STEP 00:05:00", "ROUTING_STEP 0:00:05", "REPORT_STEP 00:05:00",
        "VARIABLE_STEP 0.75", "MINIMUM_STEP 0.5", "INERTIAL_DAMPING PARTIAL",
        "NORMAL_FLOW_LIMITED BOTH", "SURCHARGE_METHOD SLOT", f"MIN_SURFAREA {MIN_SURFAREA_M2}",
        "THREADS 1", "", "[REPORT]", "INPUT NO", "CONTROLS NO", "SUBCATCHMENTS NONE",
        "NODES NONE", "LINKS NONE", "", "[RAINGAGES]",
    ]  # fmt: skip
    minutes = max(1, math.ceil((end_s - start_s) / RAIN_STEP_S))
    series = []
    for g in model.gauges:
        lines.append(f"{g} INTENSITY 0:01 1.0 TIMESERIES R_{g}")
        values = list(rain_mmh.get(g, ()))[:minutes]
        values += [0.0] * (minutes - len(values))
        series += [f"R_{g} {k / 60:.5f} {v:.3f}" for k, v in enumerate(values)]
        series.append(f"R_{g} {minutes / 60:.5f} 0.000")
    lines += ["", "[TIMESERIES]", *series, "", model.text]
    return "\n".join(lines)
