"""Draw docs/img/typhoon_rainstorm.png: rain, tide, manhole levels and overflows in the typhoon.

    .venv/bin/pip install matplotlib && .venv/bin/python scripts/plot_typhoon.py [OUT] [DISTRICT]

One district's 40 modelled manholes through the typhoon rainstorm scenario: the rain its gauges
catch (the same field that drives SWMM), the water at its gated outfalls (tide plus storm surge),
the water level in every manhole as a fraction of its depth (1 is the cover), and the overflow
events of the ground truth (truth_events.jsonl).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from firmware_sim import FleetSimulation, load_scenario, make_fleet
from firmware_sim._drain import DrainModel
from firmware_sim._geo import district
from firmware_sim._network import generate_network
from firmware_sim._rainfield import rain_series
from firmware_sim._tide import outfall_stage_m
from telemetry_core.kinds import DeviceKind

START_S = 1_786_291_200.0  # 2026-08-10 00:00 UTC, Lekima's landfall date in 2019
STEP_S = 300
NODES = 40


def main(out: Path, name: str) -> None:
    """Simulate one district through the typhoon and draw the figure."""
    scenario = load_scenario("typhoon_rainstorm")
    drains = make_fleet(name, DeviceKind.DRAIN, NODES, seed=1)
    gauges = make_fleet(name, DeviceKind.RAIN, 3, seed=1)
    sim = FleetSimulation(drains + gauges, scenario, seed=1, start_s=START_S)
    times = np.arange(START_S, START_S + scenario.duration_h * 3600, STEP_S)
    rain = np.full((len(gauges), len(times)), np.nan)
    for j, at_s in enumerate(times):
        readings = sim.read_all(float(at_s))
        for i, g in enumerate(gauges):
            got = readings[g.device_id]
            if isinstance(got, dict):
                rain[i, j] = got["rain_mmh"]
    _, _, model = sim.kind_state(DeviceKind.DRAIN)
    assert isinstance(model, DrainModel)  # noqa: S101 - a drain fleet has a drain model
    res = model.hydraulics(None, 900)
    net = generate_network(name, NODES)
    cols = [res.node_names.index(f"{district(name).code}_{j.name}") for j in net.junctions]
    level = res.depth_m[:, cols] / np.array([j.max_depth_m for j in net.junctions])
    events = [e for e in sim.truth_events(float(times[-1])) if e.label == "overflow"]
    _draw(out, name, scenario.storm_surge, times, rain, res.times_s / 3600, level, events, net)


def _draw(out, name, surge, times, rain, level_h, level, events, net) -> None:  # type: ignore[no-untyped-def]  # noqa: PLR0917 - a script's one picture
    hours = (times - START_S) / 3600
    fig, (ax_rain, ax_tide, ax_level) = plt.subplots(
        3, 1, figsize=(10, 8), sharex=True, height_ratios=(1.1, 0.8, 2.4), constrained_layout=True
    )
    reference = rain_series(load_scenario("typhoon_rainstorm"), 1)
    ax_rain.bar(np.arange(reference.size) * 5 / 60, reference, width=5 / 60, align="edge",
                color="#c8d6e8", label="scenario hyetograph (reference point)")  # fmt: skip
    for row in rain:
        ax_rain.plot(hours, row, lw=0.8, color="#1f4e8c")
    ax_rain.plot([], [], color="#1f4e8c", label="the district's rain gauges (rain_mmh)")
    ax_rain.set_ylabel("rain (mm/h)")
    ax_rain.legend(loc="upper left", fontsize=8)
    info = district(name)
    stage = outfall_stage_m(info, surge, START_S, hours * 3600) if info.coastal else None
    if stage is not None:
        for o in net.outfalls:
            ax_tide.plot(hours, stage - o.invert_m, lw=1, color="#2e8b57")
        ax_tide.axhline(0.0, color="black", lw=0.8, ls=":")
        ax_tide.text(
            0.2, 0.1, "outfall invert: above it the flap gate holds the sea out", fontsize=8
        )
    ax_tide.set_ylabel("sea above\noutfall (m)")
    labelled = {e.unit for e in events}
    for k, j in enumerate(net.junctions):
        hot = f"{info.code}-{j.name}" in labelled
        colour = "#c0392b" if hot else "#7f8c8d"
        ax_level.plot(level_h, level[:, k], lw=1.1 if hot else 0.6, color=colour,
                      alpha=0.9 if hot else 0.45)  # fmt: skip
    for e in events:
        a, b = (e.onset_s - START_S) / 3600, (e.end_s - START_S) / 3600
        ax_level.plot([a, b], [1.04, 1.04], lw=4, color="#c0392b", solid_capstyle="butt")
    ax_level.axhline(1.0, color="black", lw=1, ls="--")
    ax_level.set_ylim(0, 1.1)
    ax_level.set_ylabel("water level / manhole depth (1 = cover)")
    ax_level.set_xlabel("hours into the scenario")
    ax_level.plot([], [], color="#c0392b", lw=4, label="overflow events (ground truth)")
    ax_level.plot([], [], color="#7f8c8d", label="manholes that do not overflow")
    ax_level.legend(loc="upper left", fontsize=8)
    ax_rain.set_title(
        f"Typhoon rainstorm over {name.capitalize()}: {len(labelled)} of {len(net.junctions)} "
        f"manholes overflow, {len(events)} overflow events",
        loc="left",
    )
    fig.savefig(out, dpi=110)
    print(f"wrote {out}: {len(labelled)} of {len(net.junctions)} manholes overflow")  # noqa: T201


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/img/typhoon_rainstorm.png"),
        sys.argv[2] if len(sys.argv) > 2 else "sanmen",
    )
