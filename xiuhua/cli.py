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
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main

from xiuhua import __version__

HELP = (
    "Xiuhua (绣花): sensors in a city's drains, public toilets and garbage stations, "
    "from the device to InfluxDB, Grafana and the maintenance crew.\n\n"
    "Start with `xiuhua demo` to see it all run on this machine, or `xiuhua services up` "
    "to get a broker and a database to play with."
)


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A ``xiuhua`` subcommand: its module exposes ``app``, a ``typer.Typer``.

    ``single``: the module's app is one command (its callback), not a group: it is registered
    as a command, so its usage reads ``xiuhua ingest [OPTIONS]``, not ``COMMAND [ARGS]...``.
    A new component adds one line here (``alerting``, ``dispatch``).
    """

    name: str
    module: str
    help: str
    single: bool = False


SUBCOMMANDS = (
    Subcommand("sim", "xiuhua.commands.sim", "Simulate devices: fleets, scenarios, ground truth."),
    Subcommand(
        "edge", "xiuhua.commands.edge", "Run an edge agent (one device, or a gateway of many)."
    ),
    Subcommand(
        "ingest", "xiuhua.commands.ingest", "Run the cloud ingester: MQTT in, InfluxDB out.", True
    ),
    Subcommand(
        "services", "xiuhua.commands.services", "Start Mosquitto, InfluxDB, VictoriaMetrics."
    ),
    Subcommand(
        "alerting", "xiuhua.commands.alerting", "Run the tiered alerting service; check, backtest."
    ),
    Subcommand(
        "bench", "xiuhua.commands.bench", "Run the benchmarks and print their figures.", True
    ),
)
COMMANDS = ("demo", *(sub.name for sub in SUBCOMMANDS), "version")
"""Every top-level command, in the order the help lists them."""

_METAVARS = {"int": "N", "float": "NUMBER", "str": "TEXT", "datetime": "TIME"}


def _version() -> None:
    """Print Xiuhua's version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


def _root(
    *,
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
) -> None:
    """Xiuhua's command line."""


def _register(app: typer.Typer, sub: Subcommand) -> None:
    module_app: typer.Typer = importlib.import_module(sub.module).app
    callback = module_app.registered_callback
    if sub.single and callback is not None and callback.callback is not None:
        app.command(sub.name, help=module_app.info.help, short_help=sub.help)(callback.callback)
    else:
        app.add_typer(module_app, name=sub.name, short_help=sub.help)


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
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    if everything or wanted == "demo":
        from xiuhua.demo import demo_command

        app.command("demo")(demo_command)
    for sub in SUBCOMMANDS:
        if everything or wanted == sub.name:
            _register(app, sub)
    app.command("version")(_version)
    # A callback keeps typer in group mode even when only one command is registered.
    app.callback()(_root)
    return app


def plain_metavars(command: Any) -> None:
    """Give every option without a metavar a plain one (``PATH``, ``N``, ``NUMBER``, ``TEXT``).

    Typer would show its type names (``<float range>``, ``<list[str]>``); commands set their
    own metavars where a better word exists (``FILE``, ``DURATION``), and this covers the rest,
    including commands still to come.
    """
    ctx = command.context_class(command)
    for param in getattr(command, "params", ()):
        plain = param.metavar is None and not getattr(param, "is_flag", False)
        if plain and hasattr(param, "display_type"):
            label = param.display_type(ctx).strip("<>")
            base = label.removeprefix("list[").removesuffix("]").removesuffix(" range")
            param.metavar = f"[{base}]" if "|" in base else _METAVARS.get(base, base.upper())
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)


def get_command(argv: Sequence[str] = ()) -> Any:
    """The click command behind :func:`build_app`: plain metavars, commands in help order."""
    command: Any = typer.main.get_command(build_app(argv))
    plain_metavars(command)
    listed = command.commands
    command.commands = {n: listed[n] for n in COMMANDS if n in listed} | listed
    return command


def main() -> None:
    """Entry point of the ``xiuhua`` console script."""
    get_command(sys.argv[1:])(prog_name="xiuhua")
