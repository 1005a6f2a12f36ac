"""``xiuhua sim``: make fleets, list scenarios, run a fleet under a scenario to files."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import msgspec
import numpy as np
import typer
import yaml

from firmware_sim import (
    DEFAULT_NODES_PER_DISTRICT,
    TIERS,
    FleetError,
    HydraulicsError,
    LabelScore,
    ScenarioError,
    ScoredAlert,
    TruthEvent,
    TruthFileError,
    list_scenarios,
    load_scenario,
    load_truth_events,
    make_fleet,
    parse_duration,
    run_to_files,
    score_alerts,
)
from telemetry_core.clock import ScaledClock
from telemetry_core.errors import RegistryError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, load_registry, write_registry_csv

app = typer.Typer(
    help=(
        "Simulated devices that behave like the city's: write a fleet file, list the scenarios, "
        "and run a fleet under a scenario as fast as possible, writing readings and the ground "
        "truth (what really happened) to files."
    ),
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    """The run's output formats (``firmware_sim.OUTPUT_FORMATS``) as choices of ``--format``."""

    JSONL = "jsonl"
    JSONL_ZST = "jsonl.zst"


DEFAULT_START = "2026-08-10T00:00:00+08:00"

LABELS = ("overflow", "surcharge", "odour_nh3", "odour_h2s", "bin_full", "missed_collection",
          "fire", "device_outage")  # fmt: skip
"""The ground truth's labels besides ``fault:<type>`` (docs/simulator.md, Ground truth)."""


def _os_error(option: str, exc: OSError) -> str:
    """``--out x: File exists``: the option, the path and what is wrong with it."""
    where = exc.filename if exc.filename is not None else ""
    return f"{option} {where}: {exc.strerror or exc}".replace("  ", " ")


def _write_yaml(devices: list[Device], path: Path) -> None:
    rows = [
        {
            "device_id": d.device_id, "kind": d.kind.value, "district": d.district,
            "lat": d.lat, "lon": d.lon, "expected_interval_s": d.expected_interval_s,
            "attributes": dict(d.attributes),
        }
        for d in devices
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(rows, sort_keys=False, allow_unicode=True), encoding="utf-8")


@app.command()
def fleet(
    *,
    out: Annotated[Path, typer.Option("--out", help="Fleet file to write: .csv, .yaml or .yml.")],
    count: Annotated[int, typer.Option("--count", min=1, help="How many devices.")] = 100,
    district: Annotated[
        str | None,
        typer.Option("--district", help="One district (e.g. jiaojiang); all nine if omitted."),
    ] = None,
    kind: Annotated[
        DeviceKind | None, typer.Option("--kind", help="Only this kind; a mix if omitted.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same fleet.")] = 0,
    nodes: Annotated[
        int, typer.Option("--nodes-per-district", min=3, help="Modelled manholes per district.")
    ] = DEFAULT_NODES_PER_DISTRICT,
) -> None:
    """Write a fleet file of plausible devices (a registry the edge agent and ingester load)."""
    try:
        devices = make_fleet(district, kind, count, seed, nodes_per_district=nodes)
    except FleetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    suffix = out.suffix.lower()
    writers = {".csv": write_registry_csv, ".yaml": _write_yaml, ".yml": _write_yaml}
    if suffix not in writers:
        typer.echo(f"error: --out {out}: want a .csv, .yaml or .yml file name", err=True)
        raise typer.Exit(2)
    try:
        writers[suffix](devices, out)
    except OSError as exc:
        typer.echo(f"error: --out {out}: cannot write: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {len(devices)} devices to {out}")


@app.command()
def scenarios() -> None:
    """List the built-in scenarios (files in firmware_sim/scenarios)."""
    try:
        infos = list_scenarios()
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    width = max(len(i.name) for i in infos)
    typer.echo(f"{'NAME':<{width}}  TITLE")
    for info in infos:
        typer.echo(f"{info.name:<{width}}  {info.title}")


def _parse_start(text: str) -> float:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--start {text!r}: want an ISO time such as {DEFAULT_START}") from exc
    if at.tzinfo is None:
        raise ValueError(f"--start {text!r}: give a time zone, e.g. +08:00")
    return at.timestamp()


def _load_fleet(path: Path) -> list[Device]:
    """The fleet file's devices; ``ValueError`` when it has none (the run would write nothing)."""
    devices = list(load_registry(path))
    if not devices:
        raise ValueError(f"{path}: no devices in the fleet file")
    return devices


def _make_dirs(out: Path, cache_dir: Path | None) -> None:
    """Create ``--out`` and ``--cache-dir`` before the run, or exit 2 saying why not."""
    for option, path in (("--out", out), ("--cache-dir", cache_dir)):
        if path is None:
            continue
        if path.exists() and not path.is_dir():
            typer.echo(f"error: {option} {path}: is a file; want a directory", err=True)
            raise typer.Exit(2)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            typer.echo(f"error: {_os_error(option, exc)}", err=True)
            raise typer.Exit(2) from exc


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does, so the SWMM child is killed and files are closed."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def run(
    *,
    fleet_file: Annotated[
        Path, typer.Option("--fleet", help="Fleet file (from `xiuhua sim fleet`).")
    ],
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name or YAML file.")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for readings, events, ground truth.")
    ],
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", help="Simulated time: 90m, 6h, 2d; default the scenario's duration_h."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same run.")] = 0,
    start: Annotated[
        str, typer.Option("--start", help="Simulated start time (ISO).")
    ] = DEFAULT_START,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Keep SWMM results here for reuse.")
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", min=0.0, help="0: as fast as possible; 1: real time; 60: an hour a minute."
        ),
    ] = 0.0,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format", help="Readings and events as plain or zstd-compressed JSON lines."
        ),
    ] = OutputFormat.JSONL,
) -> None:
    """Run a fleet under a scenario as fast as possible and write the results to files."""
    try:
        start_s = _parse_start(start)
        devices = _load_fleet(fleet_file)
        sc = load_scenario(scenario)
        duration_s = sc.duration_s if duration is None else parse_duration(duration)
    except (ValueError, RegistryError, ScenarioError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _make_dirs(out, cache_dir)
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth != shown[0]:
            shown[0] = tenth
            typer.echo(f"  {done}/{total} ticks ({tenth * 10}%)", err=True)

    try:
        with _sigterm_interrupts():
            summary = run_to_files(
                devices, sc, seed=seed, start_s=start_s, duration_s=duration_s,
                out_dir=out, cache_dir=cache_dir, progress=progress,
                clock=ScaledClock(speed, start_s) if speed > 0 else None, fmt=fmt.value,
            )  # fmt: skip
    except KeyboardInterrupt as exc:
        typer.echo(f"interrupted: {out} holds a partial run", err=True)
        raise typer.Exit(130) from exc
    except FleetError as exc:  # a device the simulation cannot place: the fleet file's fault
        typer.echo(f"error: {fleet_file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except HydraulicsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"error: --out {out}: cannot write: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"{summary.devices} devices, {summary.ticks} ticks, {summary.readings} readings, "
        f"{summary.failed_reads} failed reads, {summary.truth_records} ground-truth records, "
        f"{summary.truth_events} truth events "
        f"in {summary.wall_s:.1f} s -> {out}"
    )


class _AlertRow(msgspec.Struct):
    device_id: str
    at_s: float
    tier: str
    label: str | None = None


def _load_alerts(path: Path, label: str) -> list[ScoredAlert]:
    decoder = msgspec.json.Decoder(_AlertRow)
    alerts = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = decoder.decode(line)
            alerts.append(ScoredAlert(row.device_id, row.at_s, row.tier, row.label or label))
        except (msgspec.DecodeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return alerts


class _NetworkDevices(msgspec.Struct):
    devices: dict[str, str] = msgspec.field(default_factory=dict)


def _device_units(network: Path | None) -> dict[str, str] | None:
    if network is None:
        return None
    try:
        return msgspec.json.decode(network.read_bytes(), type=_NetworkDevices).devices
    except msgspec.DecodeError as exc:
        raise ValueError(f"{network}: want a network.json with a 'devices' map: {exc}") from exc


def _check_label(label: str, events: Sequence[TruthEvent]) -> None:
    """Refuse a label no ground truth has (a typo would score nothing, with recall 1)."""
    if label in LABELS or label.startswith("fault:") or any(e.label == label for e in events):
        return
    raise ValueError(
        f"--label {label!r}: not a ground-truth label; want one of {', '.join(LABELS)} "
        "or fault:<type>"
    )


@app.command()
def score(
    *,
    truth: Annotated[Path, typer.Option("--truth", help="truth_events.jsonl of a run.")],
    alerts: Annotated[
        Path,
        typer.Option("--alerts", help='JSON lines {"device_id", "at_s", "tier", "label"?}.'),
    ],
    label: Annotated[str, typer.Option("--label", help="Label to score, e.g. overflow.")],
    horizon: Annotated[
        str, typer.Option("--horizon", help="How early a warning may come: 60m, 2h.")
    ] = "60m",
    min_tier: Annotated[
        str, typer.Option("--min-tier", help=f"Lowest tier that counts: {', '.join(TIERS)}.")
    ] = "orange",
    network: Annotated[
        Path | None,
        typer.Option("--network", help="network.json whose 'devices' map sensors to manholes."),
    ] = None,
) -> None:
    """Score alerts against a run's ground truth: precision, recall, lead times (docs: Scoring)."""
    for option, path in (("--truth", truth), ("--alerts", alerts), ("--network", network)):
        if path is not None and not path.is_file():
            why = "not a file" if path.exists() else "no such file"
            typer.echo(f"error: {option} {path}: {why}", err=True)
            raise typer.Exit(2)
    try:
        horizon_s = parse_duration(horizon)
        events = load_truth_events(truth)
        _check_label(label, events)
        scored = _load_alerts(alerts, label)
        result = score_alerts(scored, events, label=label, horizon_s=horizon_s,
                              min_tier=min_tier, device_units=_device_units(network))  # fmt: skip
    except (OSError, ValueError, TruthFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    median = "-" if result.median_lead_s is None else f"{result.median_lead_s / 60:.1f} min"
    typer.echo(
        f"label {result.label}: {result.events} events, {result.warnings} warnings "
        f"({result.true_warnings} true); warned {result.events_warned}, detected "
        f"{result.events_detected}; precision {result.precision:.3f}, recall "
        f"{result.recall:.3f}, median lead {median}"
    )
    if result.lead_times_s:
        typer.echo(f"lead times (warned events: {len(result.lead_times_s)}): {_spread(result)}")


def _spread(result: LabelScore) -> str:
    """Minimum, quartiles and maximum of the lead times, in minutes."""
    points = np.percentile(np.array(result.lead_times_s) / 60.0, [0, 25, 50, 75, 100])
    names = ("min", "p25", "median", "p75", "max")
    return ", ".join(f"{n} {v:.1f}" for n, v in zip(names, points.tolist(), strict=True)) + " min"
