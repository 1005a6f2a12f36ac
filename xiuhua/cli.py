"""The ``xiuhua`` command: one subcommand per component, and the demo.

Exit codes: 0 success, 1 the work failed (a server unreachable, data lost), 2 bad usage or
configuration (typer's own usage errors are 2 as well), 130 interrupted.

Subcommand modules are imported only when needed: ``xiuhua edge`` on a field device should not
pay for the simulator, the ingester and the local servers (see ``docs/edge.md`` on memory).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from xiuhua import __version__

HELP = (
    "Xiuhua (绣花): sensors in a city's drains, public toilets and garbage stations, "
    "from the device to InfluxDB, Grafana and the maintenance crew.\n\n"
    "Start with `xiuhua demo` to see it all run on this machine, or `xiuhua services up` "
    "to get a broker and a database to play with."
)

# (name, module, help) — each module exposes ``app``, a typer.Typer.
SUBCOMMANDS = (
    ("sim", "xiuhua.commands.sim", "Simulate devices: fleets, scenarios, ground truth."),
    ("edge", "xiuhua.commands.edge", "Run an edge agent (one device, or a gateway of many)."),
    ("ingest", "xiuhua.commands.ingest", "Run the cloud ingester: MQTT in, InfluxDB out."),
    ("services", "xiuhua.commands.services", "Start Mosquitto, InfluxDB, VictoriaMetrics."),
    ("alerting", "xiuhua.commands.alerting", "Run the tiered alerting service; check, backtest."),
    ("bench", "xiuhua.commands.bench", "Run the benchmarks and print their figures."),
)
COMMANDS = ("demo", "version", *(name for name, _, _ in SUBCOMMANDS))


def _version() -> None:
    """Print Xiuhua's version."""
    typer.echo(__version__)


def _root() -> None:
    """Xiuhua's command line."""


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    """The CLI; with ``argv`` naming a command, only that command's module is imported."""
    wanted = next((a for a in argv if not a.startswith("-")), None)
    everything = wanted not in COMMANDS
    app = typer.Typer(
        name="xiuhua",
        help=HELP,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    if everything or wanted == "demo":
        from xiuhua.demo import demo_command

        app.command("demo")(demo_command)
    for name, module, help_text in SUBCOMMANDS:
        if everything or wanted == name:
            app.add_typer(importlib.import_module(module).app, name=name, short_help=help_text)
    app.command("version")(_version)
    # A callback keeps typer in group mode even when only one command is registered.
    app.callback()(_root)
    return app


def main() -> None:
    """Entry point of the ``xiuhua`` console script."""
    build_app(sys.argv[1:])()
