"""The ``xiuhua`` command: one subcommand per component, and the demo.

Exit codes: 0 success, 1 the work failed (a server unreachable, data lost), 2 bad usage or
configuration (typer's own usage errors are 2 as well), 130 interrupted.
"""

from __future__ import annotations

import importlib

import typer

from xiuhua import __version__
from xiuhua.demo import demo_command

app = typer.Typer(
    name="xiuhua",
    help=(
        "Xiuhua (绣花): sensors in a city's drains, public toilets and garbage stations, "
        "from the device to InfluxDB, Grafana and the maintenance crew.\n\n"
        "Start with `xiuhua demo` to see it all run on this machine, or `xiuhua services up` "
        "to get a broker and a database to play with."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (name, module, help) — each module exposes ``app``, a typer.Typer.
_SUBCOMMANDS = (
    ("sim", "xiuhua.commands.sim", "Simulate devices: fleets, scenarios, ground truth."),
    ("edge", "xiuhua.commands.edge", "Run an edge agent (one device, or a gateway of many)."),
    ("ingest", "xiuhua.commands.ingest", "Run the cloud ingester: MQTT in, InfluxDB out."),
    ("services", "xiuhua.commands.services", "Start Mosquitto, InfluxDB, VictoriaMetrics."),
    ("bench", "xiuhua.commands.bench", "Run the benchmarks and print their figures."),
)

for _name, _module, _help in _SUBCOMMANDS:
    app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)


@app.command()
def version() -> None:
    """Print Xiuhua's version."""
    typer.echo(__version__)


app.command("demo")(demo_command)


def main() -> None:
    """Entry point of the ``xiuhua`` console script."""
    app()
