"""Write a SWMM model for the fleet's districts, run it in a child process, cache the results.

All districts go into one model (their networks are disconnected, each with its own outfall), so a
fleet needs one SWMM run. The model starts ``SPINUP_S`` before the scenario so that pipes already
carry dry-weather flow at time zero; the clock in the model is local time (UTC+8), which aligns
the hourly sewage pattern with the city's day. Each 1 km cell of the rain field has a rain gauge,
coastal outfalls are gated onto a tide-and-surge series, manholes pond onto the street.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

import numpy as np

from firmware_sim._geo import district
from firmware_sim._network import Network
from firmware_sim._rainfield import RAIN_STEP_MIN, RainField, cell_centre, cell_of, city_xy
from firmware_sim._scenario import StormSurge
from firmware_sim._tide import outfall_stage_m
from firmware_sim.errors import HydraulicsError

LOCAL_TZ: Final = timezone(timedelta(hours=8))
SPINUP_S: Final = 3 * 3600.0
REPORT_STEP_S: Final = 60
TIDE_STEP_S: Final = 600.0
NODE_PLAN_AREA_M2: Final = 20.0
"""A modelled manhole's effective plan area (SWMM's MIN_SURFAREA for every junction): the 15-25
real shafts of 1.0-1.25 m (0.8-1.2 m² each) and gullies of its subcatchment's minor network, which
share its hydraulic grade line once the pipes run full (Preissmann-slot surcharge keeps it)."""
FLOW_LENGTH_M: Final = 200.0
"""Subcatchment width is area / this: the unmodelled gutters and minor pipes delay runoff."""
PONDED_AREA_M2: Final = 400.0
"""Street area around a manhole where water leaving it stands (and later drains back)."""
DAILY_SEWAGE: Final = np.array(
    [0.45, 0.35, 0.30, 0.30, 0.35, 0.55, 0.95, 1.45, 1.50, 1.30, 1.15, 1.10,
     1.15, 1.05, 0.95, 0.95, 1.00, 1.15, 1.35, 1.45, 1.35, 1.15, 0.85, 0.60]
)  # fmt: skip
"""Hourly multipliers of the mean sanitary flow (morning and evening peaks), normalised below."""
SEWAGE_PATTERN: Final = DAILY_SEWAGE / DAILY_SEWAGE.mean()


@dataclass(frozen=True, slots=True)
class HydraulicResult:
    """SWMM series at the report step, from the scenario's start (spin-up dropped)."""

    node_names: tuple[str, ...]
    link_names: tuple[str, ...]
    times_s: np.ndarray  # seconds from the scenario start, shape (T,)
    depth_m: np.ndarray  # (T, nodes)
    flooding_m3s: np.ndarray  # (T, nodes)
    flow_m3s: np.ndarray  # (T, links)
    velocity_ms: np.ndarray  # (T, links)


def prefixed(network: Network, name: str) -> str:
    """The model-wide name of a junction or conduit of ``network``."""
    return f"{district(network.district).code}_{name}"


def _clock(dt: datetime) -> tuple[str, str]:
    return dt.strftime("%m/%d/%Y"), dt.strftime("%H:%M:%S")


def _options(start_local: datetime, duration_s: float) -> list[str]:
    begin = start_local - timedelta(seconds=SPINUP_S)
    end = start_local + timedelta(seconds=duration_s)
    sd, st = _clock(begin)
    rd, rt = _clock(start_local)
    ed, et = _clock(end)
    return [
        "[OPTIONS]", "FLOW_UNITS CMS", "INFILTRATION HORTON", "FLOW_ROUTING DYNWAVE",
        "LINK_OFFSETS DEPTH", "ALLOW_PONDING YES", "SKIP_STEADY_STATE NO",
        f"START_DATE {sd}", f"START_TIME {st}", f"REPORT_START_DATE {rd}",
        f"REPORT_START_TIME {rt}", f"END_DATE {ed}", f"END_TIME {et}",
        "WET_STEP 00:01:00", "DRY_STEP 00:05:00", "ROUTING_STEP 0:00:05",
        f"REPORT_STEP 00:{REPORT_STEP_S // 60:02d}:00", "VARIABLE_STEP 0.75",
        "MINIMUM_STEP 0.5", "INERTIAL_DAMPING PARTIAL", "NORMAL_FLOW_LIMITED BOTH",
        "SURCHARGE_METHOD SLOT", f"MIN_SURFAREA {NODE_PLAN_AREA_M2}", "THREADS 1", "",
        "[REPORT]", "INPUT NO", "CONTROLS NO", "SUBCATCHMENTS NONE", "NODES ALL", "LINKS ALL", "",
    ]  # fmt: skip


def _series_lines(name: str, hours: np.ndarray, values: np.ndarray) -> list[str]:
    return [f"{name} {h:.4f} {v:.3f}" for h, v in zip(hours, values, strict=True)]


def _rain_lines(field: RainField, cells: Sequence[tuple[int, int]], steps: int) -> list[str]:
    gauges, series = ["[RAINGAGES]"], []
    offset_h = SPINUP_S / 3600
    hours = offset_h + np.arange(steps + 1) * RAIN_STEP_MIN / 60
    for cell in cells:
        name = gauge_name(cell)
        gauges.append(f"{name} INTENSITY 0:{RAIN_STEP_MIN:02d} 1.0 TIMESERIES T{name}")
        rain = field.intensity_mmh(*cell_centre(cell), steps)
        series += [f"T{name} 0.0 0.0", *_series_lines(f"T{name}", hours, np.append(rain, 0.0))]
    return [*gauges, "", "[TIMESERIES]", *series]


def gauge_name(cell: tuple[int, int]) -> str:
    """The SWMM rain gauge of a field cell."""
    return f"RG_{cell[0]}_{cell[1]}".replace("-", "m")


def _tide_lines(net: Network, surge: StormSurge | None, start_s: float, end_s: float) -> list[str]:
    rel = np.arange(-SPINUP_S, end_s + TIDE_STEP_S, TIDE_STEP_S)
    stage = outfall_stage_m(district(net.district), surge, start_s, rel)
    return _series_lines(f"TIDE_{district(net.district).code}", (rel + SPINUP_S) / 3600, stage)


def junction_xy(net: Network, x_m: float, y_m: float) -> tuple[float, float]:
    """City coordinates (the rain field's) of a point of ``net``'s district-centred frame."""
    info = district(net.district)
    cx, cy = city_xy(info.lat, info.lon)
    return cx + x_m, cy + y_m


def _network_lines(net: Network) -> dict[str, list[str]]:
    info = district(net.district)
    sec: dict[str, list[str]] = {k: [] for k in SECTIONS}
    for o in net.outfalls:
        stage = f"TIMESERIES TIDE_{info.code} YES" if info.coastal else "FREE NO"
        sec["OUTFALLS"].append(f"{prefixed(net, o.name)} {o.invert_m:.3f} {stage}")
    for j in net.junctions:
        name = prefixed(net, j.name)
        sec["JUNCTIONS"].append(
            f"{name} {j.invert_m:.3f} {j.max_depth_m:.3f} 0 0 {PONDED_AREA_M2:.0f}"
        )
        sub = f"S_{name}"
        width = j.area_ha * 10_000 / FLOW_LENGTH_M
        gauge = gauge_name(cell_of(*junction_xy(net, j.x_m, j.y_m)))
        sec["SUBCATCHMENTS"].append(
            f"{sub} {gauge} {name} {j.area_ha:.3f} {j.imperv_pct} {width:.1f} 0.8 0"
        )
        sec["SUBAREAS"].append(f"{sub} 0.013 0.15 1.5 5.0 25 OUTLET")
        sec["INFILTRATION"].append(f"{sub} 75 6 4 7 0")
        sec["DWF"].append(f'{name} FLOW {j.dwf_m3s:.6f} "SEWAGE"')
    for c in net.conduits:
        name, up, down = (prefixed(net, n) for n in (c.name, c.upstream, c.downstream))
        sec["CONDUITS"].append(f"{name} {up} {down} {c.length_m:.1f} 0.013 0 0 0 0")
        sec["XSECTIONS"].append(f"{name} CIRCULAR {c.diameter_m:.3f} 0 0 0 1")
    return sec


SECTIONS: Final = (
    "JUNCTIONS", "OUTFALLS", "CONDUITS", "XSECTIONS", "SUBCATCHMENTS", "SUBAREAS",
    "INFILTRATION", "DWF",
)  # fmt: skip


def model_cells(networks: Sequence[Network]) -> list[tuple[int, int]]:
    """The rain-field cells the networks' subcatchments fall in (one SWMM rain gauge each)."""
    cells = {cell_of(*junction_xy(n, j.x_m, j.y_m)) for n in networks for j in n.junctions}
    return sorted(cells)


def build_inp(
    networks: Sequence[Network],
    field: RainField,
    start_s: float,
    duration_s: float,
    surge: StormSurge | None,
) -> str:
    """The SWMM input text for ``networks`` under the rain ``field`` and the tide and ``surge``."""
    start_local = datetime.fromtimestamp(start_s, tz=UTC).astimezone(LOCAL_TZ).replace(tzinfo=None)
    lines = ["[TITLE]", "Xiuhua simulated drainage", "", *_options(start_local, duration_s)]
    steps = math.ceil(duration_s / (RAIN_STEP_MIN * 60))
    lines += _rain_lines(field, model_cells(networks), steps)
    for net in networks:
        if district(net.district).coastal:
            lines += _tide_lines(net, surge, start_s, duration_s)
    lines.append("")
    merged: dict[str, list[str]] = {k: [] for k in SECTIONS}
    for net in networks:
        for key, rows in _network_lines(net).items():
            merged[key] += rows
    for key in SECTIONS:
        lines += [f"[{key}]", *merged[key], ""]
    pattern = " ".join(f"{v:.3f}" for v in SEWAGE_PATTERN)
    lines += ["[PATTERNS]", f"SEWAGE HOURLY {pattern}", ""]
    return "\n".join(lines)


def run_swmm(
    inp_text: str, start_s: float, cache_dir: Path | None, timeout_s: float
) -> HydraulicResult:
    """Run the model in a child process (or load it from ``cache_dir``) and return its series."""
    key = hashlib.sha256(inp_text.encode()).hexdigest()[:20]
    cached = cache_dir / f"swmm-{key}.npz" if cache_dir else None
    if cached is None or not cached.is_file():
        with tempfile.TemporaryDirectory(prefix="xiuhua-swmm-") as tmp:
            target = Path(tmp) / "result.npz"
            _run_child(inp_text, Path(tmp), target, timeout_s)
            if cached is None:
                return _load(target, start_s)
            cached.parent.mkdir(parents=True, exist_ok=True)
            target.replace(cached)
    return _load(cached, start_s)


def _run_child(inp_text: str, tmp: Path, target: Path, timeout_s: float) -> None:
    inp = tmp / "model.inp"
    inp.write_text(inp_text, encoding="utf-8")
    # Run the worker by path: it needs only numpy and pyswmm, not this package importable.
    worker = Path(__file__).with_name("_swmm_worker.py")
    cmd = [sys.executable, str(worker), str(inp), str(target)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
            env={**os.environ, "XIUHUA_SWMM_PARENT": str(os.getpid())},
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise HydraulicsError(f"SWMM run exceeded {timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not target.is_file():
        report = inp.with_suffix(".rpt")
        errors = [ln for ln in _lines(report) if "ERROR" in ln][:5]
        detail = "; ".join(errors) or proc.stderr.strip()[-800:]
        raise HydraulicsError(f"SWMM run failed (exit {proc.returncode}): {detail}")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []


def _load(path: Path, start_s: float) -> HydraulicResult:
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise HydraulicsError(f"{path}: unreadable SWMM results: {exc}") from exc
    start_local = datetime.fromtimestamp(start_s, tz=UTC).astimezone(LOCAL_TZ).replace(tzinfo=None)
    naive0 = (start_local - datetime(1970, 1, 1)).total_seconds()  # noqa: DTZ001 - SWMM clock
    return HydraulicResult(
        node_names=tuple(str(n) for n in arrays["node_names"]),
        link_names=tuple(str(n) for n in arrays["link_names"]),
        times_s=arrays["naive_s"] - naive0,
        depth_m=arrays["depth_m"],
        flooding_m3s=arrays["flooding_m3s"],
        flow_m3s=arrays["flow_m3s"],
        velocity_ms=arrays["velocity_ms"],
    )
