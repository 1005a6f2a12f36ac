"""A pure-Python backtest harness for the engine's tests: a simulator run, the engine over its
readings in event time, and the simulator's scoring helper over the transitions."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
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


Cuts = Mapping[str, Sequence[tuple[float, float]]]
"""Per device, the spans (epoch s, end excluded) its network link is down."""


def link_cuts(run: Run) -> dict[str, list[tuple[float, float]]]:
    """The scenario's network outages per device, as the simulator records them in its ground
    truth (``device_outage``, ``cause=network``: the spans its ``link_up`` says down)."""
    cuts: dict[str, list[tuple[float, float]]] = {}
    for e in run.events:
        if e.label == "device_outage" and "cause=network" in e.detail:
            for d in e.device_ids:
                cuts.setdefault(d, []).append((e.onset_s, e.end_s))
    return cuts


def replay(run: Run, rules: RuleSet, cuts: Cuts | None = None) -> list[AlertTransition]:
    """Every transition the engine makes over the run, ticking at each new minute.

    ``readings.jsonl`` holds what the devices measured, outages or not. With ``cuts`` the replay
    delivers what the cloud would receive instead: a device's readings while its link is down
    are held back, as its edge agent spools them, and delivered marked historical, in order, when
    the link is back (before the device's first live reading; the agent's token bucket, which
    spreads a backlog out, is not modelled)."""
    return replays(run, [rules], cuts)[0]


def replays(
    run: Run, rule_sets: Sequence[RuleSet], cuts: Cuts | None = None
) -> list[list[AlertTransition]]:
    """:func:`replay` of each of ``rule_sets`` (an engine each), reading the run once."""
    network_path = run.out / "network.json"
    network = load_network(network_path) if network_path.exists() else None
    engines: list[Engine] = []
    try:
        engines.extend(Engine(rules, run.devices, network) for rules in rule_sets)
        return _replay(engines, run, cuts or {})
    finally:
        for engine in engines:
            engine.close()


def _replay(engines: Sequence[Engine], run: Run, cuts: Cuts) -> list[list[AlertTransition]]:
    telemetry = {
        d.device_id: Topic(d.district, d.kind, d.device_id, Channel.TELEMETRY) for d in run.devices
    }
    decoder = msgspec.json.Decoder(Telemetry)
    outs: list[list[AlertTransition]] = [[] for _ in engines]
    pairs = list(zip(engines, outs, strict=True))
    last = None
    spans = {d: [(int(a * 1000), int(b * 1000)) for a, b in s] for d, s in cuts.items()}
    held: dict[str, list[Telemetry]] = {}
    with (run.out / "readings.jsonl").open("rb") as handle:
        for line in handle:
            msg = decoder.decode(line)
            device_id = msg.device_id
            if device_id in spans:
                if any(a <= msg.ts < b for a, b in spans[device_id]):
                    held.setdefault(device_id, []).append(msg)
                    continue
                backlog = [
                    msgspec.structs.replace(m, historical=True) for m in held.pop(device_id, ())
                ]
            else:
                backlog = []
            if last is not None and msg.ts > last:
                for engine, out in pairs:
                    out.extend(engine.tick(last / 1000.0))
            last = msg.ts
            topic = telemetry[device_id]
            for m in (*backlog, msg):
                for engine, out in pairs:
                    out.extend(engine.on_telemetry(topic, m))
    events = msgspec.json.Decoder(Event)
    by_id = {d.device_id: d for d in run.devices}
    for line in (run.out / "events.jsonl").read_bytes().splitlines():
        ev = events.decode(line)
        d = by_id[ev.device_id]
        topic = Topic(d.district, d.kind, d.device_id, Channel.EVENT)
        for engine, out in pairs:
            out.extend(engine.on_event(topic, ev))
    return outs


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


def median_delay(
    transitions: Iterable[AlertTransition], run: Run, rules: set[str], label: str, *,
    horizon_s: float = 3600.0, min_tier: str = "orange",
) -> float | None:  # fmt: skip
    """Median over the detected ``label`` events of the time from onset to the first alert of
    ``rules`` (``min_tier`` or higher) on one of its devices that matches it (``onset -
    horizon`` to its end): negative when it came ahead. What the lead time cannot tell of
    warnings that follow the event's onset, as these categories' do."""
    floor = _RANK[min_tier]
    at: dict[str, list[float]] = {}
    for a in raised(transitions, rules, label):
        if _RANK[a.tier] >= floor:
            at.setdefault(a.device_id, []).append(a.at_s)
    delays = []
    for e in run.events:
        if e.label != label:
            continue
        hits = [
            t for d in e.device_ids for t in at.get(d, ()) if e.onset_s - horizon_s <= t <= e.end_s
        ]
        if hits:
            delays.append(min(hits) - e.onset_s)
    return statistics.median(delays) if delays else None


def describe(name: str, s: LabelScore, delay_s: float | None = None) -> str:
    """One line for the test's output (with ``delay_s``, a :func:`median_delay`, at its end)."""
    lead = "-" if s.median_lead_s is None else f"{s.median_lead_s / 60:.1f} min"
    counts = f"({s.events_warned}/{s.events}, detected {s.events_detected})"
    delay = "" if delay_s is None else f"  median delay {delay_s / 60:.1f} min"
    return (f"{name:28s} warnings {s.warnings:4d}  precision {s.precision:.2f}  "
            f"recall {s.recall:.2f} {counts}  median lead {lead}{delay}")  # fmt: skip
