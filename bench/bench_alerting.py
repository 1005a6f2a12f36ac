"""Benchmark the rule engine alone: readings evaluated per second with the default rule set.

A mixed fleet (drains, toilets, garbage stations) under a scenario is simulated first and its
readings held in memory as decoded ``Telemetry``; then the engine is timed over them on one core,
with ``tick`` once per simulated minute as a backtest does. Two passes: a quiet day (most
readings pass the skip gates), then the typhoon's wettest hours (fits, neighbours and
transitions at work). Prints readings/s, transitions, the engine's memory per device (resident
memory grown by building it) and the snapshot size per device.
Usage: ``python bench/bench_alerting.py [--devices N] [--minutes M] [--scenario NAME] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import sys
import time
from pathlib import Path

from alerting import Engine, default_rules_dir, load_rules
from firmware_sim import FleetSimulation, load_scenario, make_fleet
from telemetry_core import Channel, Telemetry, Topic
from telemetry_core.driver import DriverError
from telemetry_core.registry import Device

START_S = 1_786_291_200.0  # 2026-08-10 00:00 in Taizhou


STORM = ("typhoon_rainstorm", 11 * 60)
"""The second pass: the typhoon from hour 11, when the city's first manholes overflow."""


def _readings(
    fleet: list[Device], scenario: str, minutes: int, from_minute: int = 0
) -> list[tuple[Topic, Telemetry]]:
    sim = FleetSimulation(fleet, load_scenario(scenario), seed=1, start_s=START_S)
    topics = {d.device_id: Topic(d.district, d.kind, d.device_id, Channel.TELEMETRY) for d in fleet}
    out = []
    for minute in range(from_minute, from_minute + minutes):
        at_s = START_S + 60.0 * minute
        for device_id, result in sim.read_all(at_s).items():
            if isinstance(result, DriverError) or not result:
                continue
            msg = Telemetry(
                v=1, device_id=device_id, ts=int(at_s * 1000), seq=minute, boot_id="bench",
                readings=dict(result),
            )  # fmt: skip
            out.append((topics[device_id], msg))
    return out


def _rss_bytes() -> int:
    """Resident memory now (not the peak): /proc/self/statm's second field, in pages."""
    statm = Path("/proc/self/statm").read_text(encoding="ascii")
    return int(statm.split()[1]) * resource.getpagesize()


def _pass(fleet: list[Device], scenario: str, minutes: int, from_minute: int) -> None:
    stream = _readings(fleet, scenario, minutes, from_minute)
    rules = load_rules(default_rules_dir())
    gc.collect()
    rss_before = _rss_bytes()
    built = time.perf_counter()
    engine = Engine(rules, fleet)
    compiled_s = time.perf_counter() - built
    # A long-lived engine holds a million small objects: freeze them out of the cyclic GC's
    # scans, as the service does after building its engine.
    gc.collect()
    gc.freeze()
    engine_bytes = _rss_bytes() - rss_before
    transitions, last_ts = 0, stream[0][1].ts
    began, cpu_began = time.perf_counter(), time.process_time()
    for topic, msg in stream:
        if msg.ts != last_ts:
            transitions += len(engine.tick(last_ts / 1000.0))
            last_ts = msg.ts
        transitions += len(engine.on_telemetry(topic, msg))
    elapsed = time.perf_counter() - began
    cpu_s = time.process_time() - cpu_began
    grown = _rss_bytes() - rss_before
    blob = engine.snapshot()
    hour = f" from hour {from_minute / 60:g}" if from_minute else ""
    print(
        f"devices {len(fleet)}, rules {len(rules)}, scenario {scenario}{hour}, "
        f"{minutes} simulated minutes, engine built in {compiled_s:.2f} s"
    )
    print(
        f"  readings {len(stream)} in {elapsed:.2f} s wall, {cpu_s:.2f} s CPU: "
        f"{len(stream) / cpu_s:,.0f} readings/s per CPU second on one core "
        f"({len(stream) / elapsed:,.0f} per wall second on this shared machine); "
        f"transitions {transitions}"
    )
    print(
        f"  memory: engine {engine_bytes / 2**20:.0f} MiB built, "
        f"{engine_bytes / len(fleet) / 1024:.1f} KiB per device "
        f"({grown / len(fleet) / 1024:.1f} KiB after the run, with its histories); "
        f"snapshot {len(blob) / 1024:.0f} KiB ({len(blob) / len(fleet):.0f} bytes per device)"
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {rss_mb:.0f} MiB (the readings held in memory included)", flush=True)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--scenario", default="normal_day", help="the first pass's scenario")
    parser.add_argument("--quick", action="store_true", help="2,000 devices, 10 minutes a pass")
    args = parser.parse_args()
    devices, minutes = (2_000, 10) if args.quick else (args.devices, args.minutes)
    fleet = make_fleet(None, None, devices, seed=1)
    # Each pass in a process of its own, forked before any engine exists: the memory a pass
    # measures is its own engine's, not the allocator's leftovers from the pass before.
    fork = multiprocessing.get_context("fork")
    for scenario, from_minute in ((args.scenario, 0), STORM):
        child = fork.Process(target=_pass, args=(fleet, scenario, minutes, from_minute))
        child.start()
        child.join()
        if child.exitcode != 0:
            sys.exit(f"bench_alerting: the {scenario} pass failed (exit {child.exitcode})")


if __name__ == "__main__":
    main()
