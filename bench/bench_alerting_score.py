"""Benchmark of the default drain rules' warnings on the typhoon scenario (not a test).

Simulates the four districts whose networks overflow in ``typhoon_rainstorm`` (Linhai, Sanmen,
Xianju, Luqiao: 40 drain sensors and 3 rain gauges each, as ``tests/unit/alerting/
test_typhoon_score.py``; 18 h) with ``xiuhua sim run``'s code, to a temporary directory,
replays it through the default rule set and, in the same pass, the naive baseline (fill >= 0.7,
orange at once) with ``xiuhua alerting backtest``'s code, and scores orange-or-red
warnings of ``drain.overflow`` against the ground-truth overflows (``firmware_sim.score_alerts``,
each manhole once, horizon 60 min). Prints precision, recall and median lead of both.

The issue's goals: recall >= 0.95, median lead >= 20 min and >= 1.5x the baseline's,
precision >= 0.7.

    .venv/bin/python bench/bench_alerting_score.py [--per-district 40] [--hours 18] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting import default_rules_dir, load_network, load_rules, sim_dir_items
from firmware_sim import load_scenario, load_truth_events, make_fleet, run_to_files
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Registry
from xiuhua.alerting_backtest import ScoredRule, forecast_line, run_backtest

DISTRICTS = ("linhai", "sanmen", "xianju", "luqiao")
"""The districts whose networks overflow in this scenario (the others only surcharge)."""
START_S = 1_786_291_200.0  # 2026-08-10 00:00 +08:00, the simulator's default start


def _line(name: str, scored: ScoredRule) -> str:
    sc = scored.score
    if sc is None:
        return f"{name}: no score (no overflow events or warnings)"
    lead = "-" if sc.median_lead_s is None else f"{sc.median_lead_s / 60:.1f} min"
    return (
        f"{name:16} precision {sc.precision:.3f}  recall {sc.recall:.3f}  median lead {lead}"
        f"  ({sc.events} overflow events, {sc.warnings} warnings, {sc.true_warnings} true)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-district", type=int, default=40)
    parser.add_argument("--hours", type=float, default=18.0, help="simulated hours (the test: 18)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.per_district = 20
    fleet = []
    for n, district in enumerate(DISTRICTS):
        fleet += make_fleet(district, DeviceKind.DRAIN, args.per_district, seed=1 + n)
        fleet += make_fleet(district, DeviceKind.RAIN, 3, seed=11 + n)
    with tempfile.TemporaryDirectory() as tmp_name:
        out = Path(tmp_name)
        began = time.monotonic()
        scenario = load_scenario("typhoon_rainstorm")
        run_to_files(
            fleet,
            scenario,
            seed=1,
            start_s=START_S,
            duration_s=args.hours * 3600.0,
            out_dir=out,
        )
        sim_s = time.monotonic() - began
        network_path = out / "network.json"
        network = load_network(network_path) if network_path.is_file() else None
        registry = Registry(fleet)
        result = run_backtest(
            load_rules(default_rules_dir()),
            registry,
            network,
            sim_dir_items(out, registry),
            truth=load_truth_events(out / "truth_events.jsonl"),
            horizon_s=3600.0,
        )
    rules = {r.summary.rule: r for r in result.rules}
    base = {r.summary.rule: r for r in result.baseline}
    print(
        f"typhoon_rainstorm {args.hours:g} h, {args.per_district} drain sensors and 3 rain gauges"
        f" in each of {', '.join(DISTRICTS)}; network file {'yes' if network else 'no'};"
        f" simulated in {sim_s:.0f} s, "
        f"replayed {result.replay.messages:,} readings in {result.replay.wall_s:.0f} s"
    )
    if result.forecast is not None:
        print(forecast_line(result.forecast))
    print(_line("drain.overflow", rules["drain.overflow"]))
    print(_line("baseline fill70", base["baseline.fill70"]))
    ours, theirs = rules["drain.overflow"].score, base["baseline.fill70"].score
    if ours and theirs and ours.median_lead_s and theirs.median_lead_s:
        print(f"median lead ratio to the baseline: {ours.median_lead_s / theirs.median_lead_s:.2f}")


if __name__ == "__main__":
    main()
