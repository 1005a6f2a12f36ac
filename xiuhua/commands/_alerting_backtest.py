"""The body of ``xiuhua alerting backtest``: gather inputs, replay, score, print."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer

from alerting import (
    AlertingSettings,
    InfluxHistory,
    Item,
    Network,
    default_rules_dir,
    load_network,
    load_rules,
    sim_dir_items,
)
from alerting.errors import InfluxHistoryError, NetworkError, RuleError, SimDirError
from firmware_sim import TruthEvent, TruthFileError, load_truth_events, parse_duration
from telemetry_core.errors import ConfigError, RegistryError
from telemetry_core.registry import Registry, load_registry
from telemetry_core.settings import load_settings
from xiuhua.alerting_backtest import format_report, run_backtest


@dataclass(frozen=True, slots=True)
class BacktestArgs:
    """The command's options."""

    rules: tuple[Path, ...]
    from_ms: int | None
    to_ms: int | None
    sim_dir: Path | None
    config: Path | None
    fleet: Path | None
    network: Path | None
    horizon: str
    baseline: bool
    labels: tuple[str, ...]


class _UsageError(Exception):
    """A mistake in the options or inputs: printed, exit 2."""


def run_backtest_command(args: BacktestArgs) -> int:
    """Run the backtest; the exit code (0, or 2 for a bad input, naming it)."""
    try:
        return _run(args)
    except (_UsageError, RuleError, ConfigError, RegistryError, NetworkError, SimDirError,
            TruthFileError, ValueError, OSError) as exc:  # fmt: skip
        typer.echo(f"xiuhua alerting backtest: {exc}", err=True)
        return 2
    except InfluxHistoryError as exc:
        typer.echo(f"xiuhua alerting backtest: InfluxDB: {exc}", err=True)
        return 1


def _run(args: BacktestArgs) -> int:
    if (args.sim_dir is None) == (args.config is None):
        raise _UsageError("give --sim-dir DIR (a simulator run) or --config FILE (InfluxDB)")
    rules = load_rules(list(args.rules) or [default_rules_dir()])
    settings = load_settings(AlertingSettings, args.config) if args.config else None
    registry = _registry(args, settings)
    network = _network(args, settings)
    labels = dict(_pair(text) for text in args.labels)
    truth = _truth(args.sim_dir)
    started = time.monotonic()
    result = run_backtest(
        rules, registry, network, _items(args, registry, settings), truth=truth,
        horizon_s=parse_duration(args.horizon), with_baseline=args.baseline, labels=labels,
    )  # fmt: skip
    for line in format_report(result):
        typer.echo(line)
    if truth is None:
        typer.echo("no truth_events.jsonl: alerts and flaps only, no scores")
    typer.echo(f"backtest took {time.monotonic() - started:.1f} s")
    return 0


def _pair(text: str) -> tuple[str, str]:
    rule, sep, label = text.partition("=")
    if not sep or not rule or not label:
        raise _UsageError(f"--label {text!r}: want RULE=LABEL, e.g. drain.overflow=overflow")
    return rule, label


def _registry(args: BacktestArgs, settings: AlertingSettings | None) -> Registry:
    path = args.fleet or (settings.registry.path if settings else None)
    if path is None:
        raise _UsageError("give --fleet FILE (or [registry] path in --config)")
    return load_registry(path)


def _network(args: BacktestArgs, settings: AlertingSettings | None) -> Network | None:
    path = args.network
    if path is None and args.sim_dir is not None and (args.sim_dir / "network.json").is_file():
        path = args.sim_dir / "network.json"
    if path is None and settings is not None:
        path = settings.alerting.network
    return load_network(path) if path is not None else None


def _truth(sim_dir: Path | None) -> list[TruthEvent] | None:
    if sim_dir is None or not (sim_dir / "truth_events.jsonl").is_file():
        return None
    return load_truth_events(sim_dir / "truth_events.jsonl")


def _items(
    args: BacktestArgs, registry: Registry, settings: AlertingSettings | None
) -> Iterator[Item]:
    if args.sim_dir is not None:
        yield from sim_dir_items(args.sim_dir, registry, args.from_ms, args.to_ms)
        return
    if settings is None:
        raise _UsageError("give --config FILE to replay InfluxDB")
    if args.from_ms is None or args.to_ms is None:
        raise _UsageError("replaying InfluxDB needs --from and --to")
    history = InfluxHistory(settings.influx, registry)
    try:
        yield from history.items(args.from_ms, args.to_ms)
    finally:
        history.close()
