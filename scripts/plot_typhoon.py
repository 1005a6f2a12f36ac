"""Draw docs/img/typhoon_rainstorm.png: rain, and how full the pipes run, in the typhoon scenario.

    .venv/bin/pip install matplotlib && .venv/bin/python scripts/plot_typhoon.py

A picture of what the simulator's SWMM hydraulics do under the typhoon rainstorm: every drain
node of one district, the pipe crown (fill 1.0, surcharge above it), and the spans the ground
truth records as manhole overflows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from firmware_sim import FleetSimulation, load_scenario, make_fleet
from firmware_sim._drain import rain_series
from telemetry_core.kinds import DeviceKind

START_S = 1_786_291_200.0  # 2026-08-10 00:00 UTC, Lekima's landfall date in 2019
STEP_S = 300


def main(out: Path) -> None:
    """Simulate one district's drains through the typhoon and draw the figure."""
    scenario = load_scenario("typhoon_rainstorm")
    fleet = make_fleet("wenling", DeviceKind.DRAIN, 40, seed=1)
    sim = FleetSimulation(fleet, scenario, seed=1, start_s=START_S)
    times = np.arange(START_S, START_S + scenario.duration_h * 3600, STEP_S)
    fills = np.full((len(fleet), len(times)), np.nan)
    for j, at_s in enumerate(times):
        for i, reading in enumerate(sim.read_all(float(at_s)).values()):
            if not isinstance(reading, Exception) and "fill_ratio" in reading:
                fills[i, j] = reading["fill_ratio"]
    truth = sim.ground_truth(float(times[-1]))
    overflowed = {r.device_id for r in truth if r.what == "overflow"}
    hours = (times - START_S) / 3600
    fig, (ax_rain, ax_fill) = plt.subplots(
        2, 1, figsize=(10, 6.5), sharex=True, height_ratios=(1, 2.6), constrained_layout=True
    )
    rain = rain_series(scenario, 1)
    ax_rain.bar(np.arange(rain.size) * 5 / 60, rain, width=5 / 60, align="edge", color="#4a7bb7")
    ax_rain.set_ylabel("rain (mm/h)")
    ax_rain.set_title(
        f"Typhoon rainstorm over Wenling's drains: {rain.sum() * 5 / 60:.0f} mm in 24 h, "
        f"{len(overflowed)} of {len(fleet)} manholes overflow",
        loc="left",
    )
    for i, device in enumerate(fleet):
        hot = device.device_id in overflowed
        ax_fill.plot(hours, fills[i], lw=1.2 if hot else 0.7,
                     color="#c0392b" if hot else "#7f8c8d", alpha=0.9 if hot else 0.5)  # fmt: skip
    ax_fill.axhline(1.0, color="black", lw=1, ls="--")
    ax_fill.text(0.2, 1.04, "pipe crown: above it the pipe is surcharged", fontsize=8)
    ax_fill.set_ylabel("fill ratio (water depth / pipe diameter)")
    ax_fill.set_xlabel("hours into the scenario")
    ax_fill.plot([], [], color="#c0392b", label="manholes that overflow (ground truth)")
    ax_fill.plot([], [], color="#7f8c8d", label="the others")
    ax_fill.legend(loc="upper right", fontsize=8)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}: {len(overflowed)} of {len(fleet)} manholes overflow")  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/img/typhoon_rainstorm.png"))
