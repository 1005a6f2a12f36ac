"""``xiuhua services up``: run a private Mosquitto, InfluxDB and VictoriaMetrics until stopped."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xiuhua._signals import Interrupted, interrupt_on_signals

if TYPE_CHECKING:
    from xiuhua.services import Supervisor

app = typer.Typer(
    help=(
        "Local servers for development and demos: Mosquitto (MQTT broker), InfluxDB 1.x "
        "(time-series database) and VictoriaMetrics (an alternative store that accepts InfluxDB "
        "writes). They run as child processes bound to 127.0.0.1 only, never touch the system "
        "services, and stop when this command stops.\n\n"
        "Exit codes: 0 stopped cleanly, 1 a server failed to start or stop, 2 bad options."
    ),
    no_args_is_help=True,
)


@app.callback()
def services() -> None:
    """Local servers for development and demos (see ``up``)."""


_LOG_LEVELS = ("debug", "info", "warning", "error")
_PORT_HELP = "TCP port on 127.0.0.1; 0 picks a free one."


@app.command()
def up(
    *,
    mqtt_port: Annotated[
        int, typer.Option(metavar="PORT", min=0, max=65535, help=f"MQTT. {_PORT_HELP}")
    ] = 0,
    influx_port: Annotated[
        int, typer.Option(metavar="PORT", min=0, max=65535, help=f"InfluxDB HTTP API. {_PORT_HELP}")
    ] = 0,
    vm_port: Annotated[
        int,
        typer.Option(
            metavar="PORT", min=0, max=65535, help=f"VictoriaMetrics HTTP API. {_PORT_HELP}"
        ),
    ] = 0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            metavar="DIR",
            help="Keep configs, data and logs here between runs (one sub-folder per server). "
            "Default: a temporary folder deleted on exit.",
        ),
    ] = None,
    database: Annotated[
        str, typer.Option(metavar="NAME", help="InfluxDB database to create for the pipeline.")
    ] = "xiuhua",
    victoria: Annotated[bool, typer.Option(help="Also start VictoriaMetrics.")] = True,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Start the servers, print where they listen and how to point Xiuhua at them, then wait.

    Ctrl-C or SIGTERM stops each server: SIGTERM first (Mosquitto saves state), SIGKILL after 20 s.
    """
    from telemetry_core.errors import ServiceError
    from telemetry_core.logging import configure_logging
    from xiuhua.services import (
        InfluxDB,
        LocalServer,
        Mosquitto,
        Supervisor,
        VictoriaMetrics,
    )

    if log_level not in _LOG_LEVELS:
        raise typer.BadParameter(f"use one of {', '.join(_LOG_LEVELS)}", param_hint="--log-level")
    configure_logging(log_level)
    with interrupt_on_signals():
        root = data_dir or Path(tempfile.mkdtemp(prefix="xiuhua-services-"))
        servers: list[LocalServer] = [
            Mosquitto(root / "mosquitto", port=mqtt_port),
            InfluxDB(root / "influxdb", port=influx_port),
        ]
        if victoria:
            servers.append(VictoriaMetrics(root / "victoria-metrics", port=vm_port))
        supervisor = Supervisor(servers)
        try:
            try:
                _serve(supervisor, database, root)
            finally:
                _cleanup(supervisor, root, keep=data_dir is not None)
        except ServiceError as exc:
            typer.echo(f"xiuhua services: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo("stopped", err=True)


def _serve(supervisor: Supervisor, database: str, root: Path) -> None:
    """Start, print the summary, wait for SIGINT or SIGTERM; exit 128+N if one comes early."""
    try:
        supervisor.start()  # a server that fails to start stops the others
        _prepare(supervisor, database)
    except Interrupted as exc:
        typer.echo(f"{exc} while starting; stopping", err=True)
        raise typer.Exit(exc.exit_code) from None
    try:  # running: a stop signal from here on is the way to stop, exit 0
        _print_summary(supervisor, database, root)
        while True:  # a timed sleep lets the interpreter run the signal handler promptly
            time.sleep(0.5)
    except Interrupted:
        pass


def _prepare(supervisor: Supervisor, database: str) -> None:
    from xiuhua.services import InfluxDB

    influx = supervisor.get("influxdb")
    if isinstance(influx, InfluxDB):
        influx.create_database(database)


def _print_summary(supervisor: Supervisor, database: str, root: Path) -> None:
    from xiuhua.services import InfluxDB, Mosquitto, settings_env, settings_toml

    for server in supervisor.servers:
        typer.echo(f"{server.name:17} {server.url}   (log: {server.log_path})")
    mqtt, influx = supervisor.get("mosquitto"), supervisor.get("influxdb")
    mqtt = mqtt if isinstance(mqtt, Mosquitto) else None
    influx = influx if isinstance(influx, InfluxDB) else None
    typer.echo(f"\ndata in {root}\n\n# settings TOML (pass with --config):")
    typer.echo(settings_toml(mqtt, influx, database))
    typer.echo("# or environment variables:")
    for key, value in settings_env(mqtt, influx, database).items():
        typer.echo(f"export {key}={value}")
    victoria = supervisor.get("victoria-metrics")
    if victoria is not None:
        typer.echo(
            f'\n# to try the InfluxDB v2 write path, set [influx] url = "{victoria.url}" and '
            'api = "v2" (VictoriaMetrics accepts any org, bucket and token)'
        )
    typer.echo("\nready; Ctrl-C or SIGTERM stops all servers", err=True)


def _cleanup(supervisor: Supervisor, root: Path, *, keep: bool) -> None:
    try:
        supervisor.stop()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
