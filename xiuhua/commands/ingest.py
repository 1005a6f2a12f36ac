"""``xiuhua ingest``: run the cloud ingester until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

app = typer.Typer(
    help=(
        "Run the cloud ingester: take device telemetry, events and statuses from MQTT (a "
        "persistent session that survives broker restarts; several instances split the fleet "
        "by district, see [ingest] districts), check every message, "
        "write them to InfluxDB (measurements drain/toilet/garbage/rain, device_events, "
        "device_status) and acknowledge each message only once the database has it. Bad "
        "messages go to the dead letter (InfluxDB measurement ingest_rejects and MQTT topic "
        "xh/v1/_deadletter/ingest) with the reason. Messages the broker drops at its queue "
        "bound are counted from Mosquitto's $SYS counter, logged as errors and stored in "
        "ingest_stats. Stop with Ctrl-C or SIGTERM; what was not yet written stays with the "
        "broker and is delivered again on the next start.\n\n"
        "Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad settings or fleet file, "
        "70 a worker thread died (restart it), 75 a clean stop overran 30 s and was cut short "
        "(every thread's stack on stderr)."
    ),
    invoke_without_command=True,
)


@app.callback(invoke_without_command=True)
def ingest(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Settings TOML ([mqtt] [influx] [registry] [log] [ingest]); "
            "XIUHUA_<SECTION>__<KEY> environment variables override it.",
        ),
    ] = None,
) -> None:
    """Run the ingester with the settings in ``--config``."""
    from cloud_ingest import IngestSettings, build_service, load_fleet
    from telemetry_core.errors import ConfigError, RegistryError
    from telemetry_core.logging import configure_logging
    from telemetry_core.settings import load_settings
    from telemetry_core.threads import install_excepthook, stop_deadline
    from xiuhua._signals import Interrupted, interrupt_on_signals

    try:
        with interrupt_on_signals():
            settings = load_settings(IngestSettings, config)
            configure_logging(settings.log.level, json=settings.log.json_lines)
            install_excepthook()  # any thread that dies ends the process (exit 70)
            service = build_service(settings, load_fleet(settings))
    except Interrupted as exc:
        raise typer.Exit(exc.exit_code) from None
    except (ConfigError, RegistryError) as exc:
        typer.echo(f"xiuhua ingest: {exc}", err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    service.start()
    while not stop.wait(0.5):
        pass
    with stop_deadline("ingest"):  # a stop that hangs ends the process, stacks on stderr
        service.stop()
