"""``xiuhua alerting``: run the rule engine service, check rules files, backtest rules."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

app = typer.Typer(
    help=(
        "The tiered alerting service (分类分级预警): it reads device telemetry, events and "
        "statuses from MQTT as they arrive, evaluates the rules (YAML, validated at start), and "
        "publishes every alert transition on xh/v1/_alert/{district}/{device_id} and incidents "
        "on xh/v1/_incident/...; the ingester stores them in InfluxDB (alert_events, "
        "alert_state). State is checkpointed every few hundred milliseconds and a message is "
        "acknowledged only once its effect is durable and its transitions were acknowledged by "
        "the broker: after a crash the same transitions are published again, with the same ids.\n\n"
        "`xiuhua alerting --config FILE` (or `run`) runs the service; `check` validates rules "
        "files; `backtest` replays history through the same engine and scores it; `alerts` lists "
        "the alerts standing now; `silence add|list|expire` manages maintenance silences.\n\n"
        "Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad settings, fleet or rules, "
        "70 a worker thread died (the log says which: thread_died), 75 a clean stop overran "
        "30 s and was cut short (every thread's stack on stderr)."
    ),
    invoke_without_command=True,
    no_args_is_help=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c",
        help="Settings TOML ([mqtt] [registry] [log] [alerting]); "
        "XIUHUA_<SECTION>__<KEY> environment variables override it.",
    ),
]  # fmt: skip


@app.callback(invoke_without_command=True)
def alerting(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Run the alerting service when no subcommand is given."""
    if ctx.invoked_subcommand is None:
        _run(config)


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run the alerting service with the settings in --config until SIGINT or SIGTERM."""
    _run(config)


def _run(config: Path | None) -> None:
    from alerting import AlertingSettings, build_service, load_fleet
    from alerting.errors import AlertingError
    from telemetry_core.errors import ConfigError, RegistryError
    from telemetry_core.logging import configure_logging
    from telemetry_core.settings import load_settings
    from telemetry_core.threads import install_excepthook, stop_deadline

    try:
        settings = load_settings(AlertingSettings, config)
        configure_logging(settings.log.level, json=settings.log.json_lines)
        install_excepthook()  # any thread that dies ends the process (exit 70)
        service = build_service(settings, load_fleet(settings))
    except (ConfigError, RegistryError, AlertingError) as exc:
        typer.echo(f"xiuhua alerting: {exc}", err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    service.start()
    dead = None
    while not stop.wait(0.5):
        dead = service.dead_thread()
        if dead is not None:
            break
    with stop_deadline("alerting"):  # a stop that hangs ends the process, stacks on stderr
        service.stop()
    if dead is not None:
        typer.echo(f"xiuhua alerting: worker thread {dead} died; see the log", err=True)
        raise typer.Exit(1)


@app.command()
def check(
    rules: Annotated[
        list[Path], typer.Option("--rules", "-r", help="Rules file or directory (repeatable).")
    ],
) -> None:
    """Validate rules files without running: exit 2 with a message naming file, rule, field."""
    from alerting import load_rules
    from alerting.errors import RuleError

    try:
        loaded = load_rules(rules)
    except RuleError as exc:
        typer.echo(f"xiuhua alerting check: {exc}", err=True)
        raise typer.Exit(2) from exc
    files = sorted({r.source for r in loaded.rules})
    typer.echo(f"{len(loaded.rules)} rules in {len(files)} files: OK")


def _epoch_ms(text: str, option: str) -> int:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        typer.echo(f"{option} {text!r}: want an ISO 8601 time with a zone", err=True)
        raise typer.Exit(2) from None
    if at.tzinfo is None:
        typer.echo(f"{option} {text!r}: give the time zone, e.g. {text}+08:00", err=True)
        raise typer.Exit(2)
    return int(at.timestamp() * 1000)


@app.command()
def backtest(
    *,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Rules file or directory; default: the shipped set."),
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start (ISO 8601 with zone); default: all.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (ISO 8601 with zone).")] = None,
    sim_dir: Annotated[
        Path | None, typer.Option("--sim-dir", help="A `xiuhua sim run --out` directory.")
    ] = None,
    config: ConfigOpt = None,
    fleet: Annotated[
        Path | None, typer.Option("--fleet", help="Fleet file; default: [registry] path.")
    ] = None,
    network: Annotated[
        Path | None, typer.Option("--network", help="network.json; default: the sim dir's.")
    ] = None,
    horizon: Annotated[str, typer.Option("--horizon", help="Scoring horizon: 60m.")] = "60m",
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Replay the fill>=0.7 baseline.")
    ] = True,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="RULE=LABEL to score a rule against.")
    ] = None,
) -> None:
    """Replay history (InfluxDB per --config, or --sim-dir) through the engine; report per rule
    alerts, flaps and, with ground truth (truth_events.jsonl), precision, recall, lead time."""
    from xiuhua.commands._alerting_backtest import BacktestArgs, run_backtest_command

    args = BacktestArgs(
        rules=tuple(rules or ()), from_ms=_epoch_ms(from_, "--from") if from_ else None,
        to_ms=_epoch_ms(to, "--to") if to else None, sim_dir=sim_dir, config=config,
        fleet=fleet, network=network, horizon=horizon, baseline=baseline,
        labels=tuple(label or ()),
    )  # fmt: skip
    sys.exit(run_backtest_command(args))


def _register_ops() -> None:
    from xiuhua.commands._alerting_ops import alerts, silence_app

    app.add_typer(silence_app, name="silence")
    app.command("alerts")(alerts)


_register_ops()
