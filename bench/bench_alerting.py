"""Benchmark the rule engine alone: readings evaluated per second with the default rule set.

A mixed fleet (drains, toilets, garbage stations) under a scenario is simulated first and its
readings held in memory as decoded ``Telemetry``; then the engine is timed over them on one core,
with ``tick`` once per simulated minute as a backtest does. Prints readings/s, transitions and the
snapshot size per device.
Usage: ``python bench/bench_alerting.py [--devices N] [--minutes M] [--scenario NAME]``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

from alerting import Engine, default_rules_dir, load_rules
from firmware_sim import FleetSimulation, load_scenario, make_fleet
from telemetry_core import Channel, Telemetry, Topic
from telemetry_core.driver import DriverError
from telemetry_core.registry import Device

START_S = 1_786_291_200.0  # 2026-08-10 00:00 in Taizhou


def _readings(fleet: list[Device], scenario: str, minutes: int) -> list[tuple[Topic, Telemetry]]:
    sim = FleetSimulation(fleet, load_scenario(scenario), seed=1, start_s=START_S)
    topics = {d.device_id: Topic(d.district, d.kind, d.device_id, Channel.TELEMETRY) for d in fleet}
    out = []
    for minute in range(minutes):
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


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--scenario", default="normal_day")
    args = parser.parse_args()
    fleet = make_fleet(None, None, args.devices, seed=1)
    stream = _readings(fleet, args.scenario, args.minutes)
    rules = load_rules(default_rules_dir())
    built = time.perf_counter()
    engine = Engine(rules, fleet)
    compiled_s = time.perf_counter() - built
    # A long-lived engine holds a million small objects: freeze them out of the cyclic GC's
    # scans, as the service does after building its engine.
    gc.collect()
    gc.freeze()
    transitions, last_ts = 0, stream[0][1].ts
    began, cpu_began = time.perf_counter(), time.process_time()
    for topic, msg in stream:
        if msg.ts != last_ts:
            transitions += len(engine.tick(last_ts / 1000.0))
            last_ts = msg.ts
        transitions += len(engine.on_telemetry(topic, msg))
    elapsed = time.perf_counter() - began
    cpu_s = time.process_time() - cpu_began
    blob = engine.snapshot()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"devices {len(fleet)}, rules {len(rules)}, scenario {args.scenario}, "
        f"{args.minutes} simulated minutes, engine built in {compiled_s:.2f} s"
    )
    print(
        f"readings {len(stream)} in {elapsed:.2f} s wall, {cpu_s:.2f} s CPU: "
        f"{len(stream) / cpu_s:,.0f} readings/s per CPU second on one core "
        f"({len(stream) / elapsed:,.0f} per wall second on this shared machine); "
        f"transitions {transitions}"
    )
    print(f"snapshot {len(blob) / 1024:.0f} KiB ({len(blob) / len(fleet):.0f} bytes per device); "
          f"peak RSS {rss_mb:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
