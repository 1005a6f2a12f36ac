"""A pure-Python backtest harness for the engine's tests: a simulator run, the engine over its
readings in event time, and the simulator's scoring helper over the transitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from alerting import Engine, RuleSet, load_network
from firmware_sim import (
    LabelScore,
    ScoredAlert,
    TruthEvent,
    load_scenario,
    load_truth_events,
    run_to_files,
    score_alerts,
)
from telemetry_core import AlertTransition, Channel, Event, Telemetry, Topic, load_registry
from telemetry_core.registry import Device, write_registry_csv

START_S = 1_786_291_200.0
_RANK = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}


@dataclass(frozen=True, slots=True)
class Run:
    """A simulator run on disk."""

    out: Path
    devices: list[Device]
    events: list[TruthEvent]


def simulate(
    devices: Sequence[Device], scenario: str, out: Path, hours: float, seed: int = 1
) -> Run:
    """Run the simulator; the run's directory, fleet and ground-truth events."""
    write_registry_csv(devices, out / "fleet.csv")
    run_to_files(devices, load_scenario(scenario), seed=seed, start_s=START_S,
                 duration_s=hours * 3600, out_dir=out)  # fmt: skip
    return Run(
        out, list(load_registry(out / "fleet.csv")), load_truth_events(out / "truth_events.jsonl")
    )


def replay(run: Run, rules: RuleSet) -> list[AlertTransition]:
    """Every transition the engine makes over the run, ticking at each new minute."""
    network_path = run.out / "network.json"
    network = load_network(network_path) if network_path.exists() else None
    engine = Engine(rules, run.devices, network)
    try:
        return _replay(engine, run)
    finally:
        engine.close()


def _replay(engine: Engine, run: Run) -> list[AlertTransition]:
    by_id = {d.device_id: d for d in run.devices}
    decoder = msgspec.json.Decoder(Telemetry)
    out: list[AlertTransition] = []
    last = None
    with (run.out / "readings.jsonl").open("rb") as handle:
        for line in handle:
            msg = decoder.decode(line)
            if last is not None and msg.ts > last:
                out += engine.tick(last / 1000.0)
            last = msg.ts
            d = by_id[msg.device_id]
            out += engine.on_telemetry(
                Topic(d.district, d.kind, d.device_id, Channel.TELEMETRY), msg
            )
    events = msgspec.json.Decoder(Event)
    for line in (run.out / "events.jsonl").read_bytes().splitlines():
        ev = events.decode(line)
        d = by_id[ev.device_id]
        out += engine.on_event(Topic(d.district, d.kind, d.device_id, Channel.EVENT), ev)
    return out


def raised(
    transitions: Iterable[AlertTransition], rules: set[str], label: str
) -> list[ScoredAlert]:
    """Each rise of an alert of ``rules`` as a warning predicting ``label``."""
    return [
        ScoredAlert(t.device_id, t.ts / 1000.0, t.tier_to, label)
        for t in transitions
        if t.rule in rules and _RANK[t.tier_to] > _RANK[t.tier_from]
    ]


def score(
    transitions: Iterable[AlertTransition], run: Run, rules: set[str], label: str, *,
    horizon_s: float = 3600.0, min_tier: str = "orange",
) -> LabelScore:  # fmt: skip
    """Precision, recall and lead of ``rules``' warnings against ``label`` events."""
    alerts = raised(transitions, rules, label)
    return score_alerts(alerts, run.events, label=label, horizon_s=horizon_s, min_tier=min_tier)


def describe(name: str, s: LabelScore) -> str:
    """One line for the test's output."""
    lead = "-" if s.median_lead_s is None else f"{s.median_lead_s / 60:.1f} min"
    counts = f"({s.events_warned}/{s.events}, detected {s.events_detected})"
    return (f"{name:28s} warnings {s.warnings:4d}  precision {s.precision:.2f}  "
            f"recall {s.recall:.2f} {counts}  median lead {lead}")  # fmt: skip
