"""Benchmark the device simulator: a city-wide fleet read once a minute, as fast as possible.

The timed window lies inside the scenario's storm (by default the two hours around its middle,
where the typhoon's main rain band falls and the drains surcharge), not in the dry hours before
it: the simulator is first stepped, untimed, to the window's start. Prints the simulated hours
covered, devices, × real time (simulated seconds per wall second), readings per second and peak
RSS. The SWMM run (one child process for all districts) and the fast-forward are timed apart.
Usage: ``python bench/bench_sim.py [--quick] [--devices N] [--minutes M] [--from-hour H]
[--scenario NAME]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from firmware_sim import FleetSimulation, Scenario, load_scenario, make_fleet

START_S = 1_786_291_200.0  # 2026-08-10 00:00 in Taizhou
WINDOW_MIN = 120


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 devices for 30 minutes")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=WINDOW_MIN, help="simulated minutes timed")
    parser.add_argument(
        "--from-hour", type=float, default=None, help="scenario hour to start (default: storm)"
    )
    parser.add_argument("--scenario", default="typhoon_rainstorm")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.minutes = 10_000, 30
    return args


def storm_hours(scenario: Scenario) -> tuple[float, float] | None:
    """First and last hour of rain in the scenario, or None for a dry one."""
    spans = []
    for event in scenario.rain:
        length_h = getattr(event, "duration_h", None) or getattr(event, "duration_min", 60) / 60
        spans.append((event.start_h, event.start_h + length_h))
    if not spans:
        return None
    return min(s for s, _ in spans), min(max(e for _, e in spans), scenario.duration_h)


def window_start_h(scenario: Scenario, minutes: int, from_hour: float | None) -> float:
    """Where the timed window starts: as asked, else centred in the storm, else at hour 0."""
    if from_hour is not None:
        return from_hour
    storm = storm_hours(scenario)
    if storm is None:
        return 0.0
    middle = (storm[0] + storm[1]) / 2
    return max(storm[0], middle - minutes / 120)


def main() -> None:
    """Run the benchmark and print its figures."""
    args = _args()
    scenario = load_scenario(args.scenario)
    begin_h = window_start_h(scenario, args.minutes, args.from_hour)
    began = time.perf_counter()
    fleet = make_fleet(None, None, args.devices, seed=1)
    made = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        sim = FleetSimulation(fleet, scenario, 1, START_S, cache_dir=Path(cache))
        sim.read_all(START_S)
        first = time.perf_counter()
        window_s = START_S + begin_h * 3600
        sim.advance_to(window_s)
        sim.read_all(window_s)
        forwarded = time.perf_counter()
        readings, step_s = 0, 0.0
        for minute in range(1, args.minutes + 1):
            at_s = window_s + minute * 60
            tick = time.perf_counter()
            sim.advance_to(at_s)
            step_s += time.perf_counter() - tick
            readings += sum(1 for r in sim.read_all(at_s).values() if isinstance(r, dict))
        done = time.perf_counter()
    loop_s = done - forwarded
    end_h = begin_h + args.minutes / 60
    storm = storm_hours(scenario)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scenario                 {args.scenario}")
    print(f"storm (rain)             {_span(storm)}")
    print(f"simulated hours timed    {begin_h:.1f}-{end_h:.1f} h ({args.minutes} minutes)")
    print(f"devices                  {len(fleet):,}")
    print(f"make_fleet               {made - began:.2f} s")
    print(f"first read (SWMM + init) {first - made:.2f} s")
    print(f"fast-forward to {begin_h:4.1f} h  {forwarded - first:.2f} s (untimed)")
    print(f"stepping only            {step_s / args.minutes * 1000:.1f} ms per simulated minute")
    print(f"step + read_all          {loop_s / args.minutes * 1000:.1f} ms per simulated minute")
    print(f"x real time              {args.minutes * 60 / loop_s:.1f}")
    print(f"readings per second      {readings / loop_s:,.0f}")
    print(f"peak RSS                 {rss_mb:.0f} MiB")
    assert readings > 0.9 * len(fleet) * args.minutes, "most reads must succeed"
    if storm is not None and args.from_hour is None:
        assert storm[0] <= begin_h < end_h <= storm[1] + 1e-9, "the window must lie in the storm"


def _span(storm: tuple[float, float] | None) -> str:
    return "none (a dry scenario)" if storm is None else f"{storm[0]:.1f}-{storm[1]:.1f} h"


if __name__ == "__main__":
    main()
