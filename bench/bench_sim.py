"""Benchmark the device simulator: a city-wide fleet read once a minute, as fast as possible.

Prints devices, simulated seconds per wall second, readings per second and peak RSS. The SWMM run
(one child process for all districts) is timed separately: it happens once per fleet and scenario.
Usage: ``python bench/bench_sim.py [--quick] [--devices N] [--minutes M] [--scenario NAME]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from firmware_sim import FleetSimulation, load_scenario, make_fleet

START_S = 1_786_291_200.0  # 2026-08-10 00:00 in Taizhou


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 devices for 30 minutes")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--scenario", default="typhoon_rainstorm")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.minutes = 10_000, 30
    return args


def main() -> None:
    """Run the benchmark and print its figures."""
    args = _args()
    began = time.perf_counter()
    fleet = make_fleet(None, None, args.devices, seed=1)
    made = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        sim = FleetSimulation(
            fleet, load_scenario(args.scenario), 1, START_S, cache_dir=Path(cache)
        )
        sim.read_all(START_S)
        first = time.perf_counter()
        readings = 0
        step_s = 0.0
        for minute in range(1, args.minutes + 1):
            tick = time.perf_counter()
            sim.advance_to(START_S + minute * 60)
            step_s += time.perf_counter() - tick
            readings += sum(
                1 for r in sim.read_all(START_S + minute * 60).values() if isinstance(r, dict)
            )
        done = time.perf_counter()
    loop_s = done - first
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scenario                 {args.scenario}")
    print(f"devices                  {len(fleet):,}")
    print(f"make_fleet               {made - began:.2f} s")
    print(f"first read (SWMM + init) {first - made:.2f} s")
    print(f"simulated minutes        {args.minutes}")
    print(f"stepping only            {step_s / args.minutes * 1000:.1f} ms per simulated minute")
    print(f"step + read_all          {loop_s / args.minutes * 1000:.1f} ms per simulated minute")
    print(f"simulated s per wall s   {args.minutes * 60 / loop_s:.1f}")
    print(f"readings per second      {readings / loop_s:,.0f}")
    print(f"peak RSS                 {rss_mb:.0f} MiB")
    assert readings > 0.9 * len(fleet) * args.minutes, "most reads must succeed"


if __name__ == "__main__":
    main()
