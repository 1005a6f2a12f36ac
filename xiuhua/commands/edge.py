"""``xiuhua edge``: run an edge agent (one device, or a gateway of many) until SIGINT or SIGTERM."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from telemetry_core.errors import XiuhuaError
from xiuhua._signals import Interrupted, interrupt_on_signals

if TYPE_CHECKING:
    from edge_agent import EdgeAgent, EdgeSettings
    from telemetry_core.driver import SensorDriver
    from telemetry_core.registry import Device

app = typer.Typer(
    help=(
        "Run an edge agent: read a device's sensors, filter them (median spike rejection, "
        "report by exception, local alarm thresholds), keep every message in a SQLite spool "
        "until the MQTT broker acknowledges it, replay the backlog after an outage, and obey "
        "remote config and commands. One device per process (edge.device_id) or a gateway "
        "hosting many simulated devices over one connection (edge.gateway_id).\n\n"
        "Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad settings or fleet file, "
        "70 a worker thread died (restart it), 75 a clean stop overran 30 s and was cut short "
        "(every thread's stack on stderr)."
    ),
    invoke_without_command=True,
    subcommand_metavar="[COMMAND]",  # the agent itself runs without one
)


@app.callback(invoke_without_command=True)
def edge(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Settings TOML ([mqtt] [registry] [log] [edge]); "
            "XIUHUA_<SECTION>__<KEY> environment variables override it.",
        ),
    ] = None,
) -> None:
    """Run the agent described by ``--config``."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        typer.echo("xiuhua edge: give --config FILE (see docs/edge.md for an example)", err=True)
        raise typer.Exit(2)
    from edge_agent import EdgeError, serve, summary

    try:
        # SWMM runs in a child process during the build: a stop signal must reach it too.
        with interrupt_on_signals():
            agent, settings = _build(config)
    except Interrupted as exc:
        raise typer.Exit(exc.exit_code) from None
    except SimulationFailedError as exc:
        typer.echo(f"xiuhua edge: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (XiuhuaError, ValueError) as exc:  # settings, fleet file, driver, scenario
        typer.echo(f"xiuhua edge: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(summary(agent, settings))
    try:
        serve(agent)
    except EdgeError as exc:
        typer.echo(f"xiuhua edge: stopped on error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("acl")
def acl(
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", metavar="FILE", help="Fleet file of the devices a gateway hosts."),
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", metavar="ID", help="Gateway id (its MQTT username).")
    ] = None,
    cloud_user: Annotated[
        str | None,
        typer.Option(
            "--cloud-user",
            metavar="USER",
            help="The cloud services' user: reads the devices' topics and $SYS, writes dead "
            "letters, alerts, incidents and commands.",
        ),
    ] = None,
) -> None:
    """Print a Mosquitto ACL file: each device (username = device id) on its own topics only."""
    from edge_agent import cloud_acl, device_acl, gateway_acl
    from telemetry_core.errors import ContractError, RegistryError
    from telemetry_core.registry import load_registry

    if gateway is not None and fleet is None:
        typer.echo("xiuhua edge acl: --gateway needs --fleet with the devices it hosts", err=True)
        raise typer.Exit(2)
    parts = [device_acl()]
    try:
        if gateway is not None and fleet is not None:
            parts.append(gateway_acl(gateway, load_registry(fleet)))
        if cloud_user is not None:
            parts.append(cloud_acl(cloud_user))
    except (RegistryError, ContractError) as exc:
        typer.echo(f"xiuhua edge acl: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("\n".join(parts), nl=False)


def _build(config: Path) -> tuple[EdgeAgent, EdgeSettings]:
    from edge_agent import (
        agent_clock,
        build_agent,
        configured_devices,
        load_driver_factory,
        load_edge_settings,
    )
    from telemetry_core.logging import configure_logging
    from telemetry_core.threads import install_excepthook

    settings = load_edge_settings(config)
    configure_logging(settings.log.level, json=settings.log.json_lines)
    install_excepthook()  # any thread that dies ends the process (exit 70)
    # One instant for the agent's clock and the simulation: scenario time starts at sim_start.
    start_s = settings.edge.sim_start_s(time.time())
    devices = configured_devices(settings) or _sim_fleet(settings)
    if settings.edge.driver == "sim":
        drivers = _sim_drivers(settings, devices, start_s)
        clock = agent_clock(settings, start_s)  # only now: the warm-up took no simulated time
    else:
        clock = agent_clock(settings, start_s)
        factory = load_driver_factory(settings.edge.driver)
        drivers = {d.device_id: factory(d, clock) for d in devices}
    return build_agent(settings, devices, drivers, clock), settings


def _sim_fleet(settings: EdgeSettings) -> list[Device]:
    """No fleet file and no full identity in ``[edge]``: a simulated fleet (or one device)."""
    from edge_agent import AgentConfigError
    from firmware_sim import make_fleet

    edge = settings.edge
    if edge.driver != "sim":
        raise AgentConfigError(
            "name the device: [registry] path, or edge.device_id with edge.district and edge.kind"
        )
    if edge.device_id is not None:
        (device,) = make_fleet(edge.district, edge.kind, 1, edge.seed)
        return [dataclasses.replace(device, device_id=edge.device_id)]
    return make_fleet(edge.district, edge.kind, edge.sim_fleet_size, edge.seed)


def _sim_drivers(
    settings: EdgeSettings, devices: Sequence[Device], start_s: float
) -> dict[str, SensorDriver]:
    from firmware_sim import FleetSimulation, HydraulicsError, load_scenario

    edge = settings.edge
    simulation = FleetSimulation(devices, load_scenario(edge.scenario), edge.seed, start_s)
    try:
        # Run the hydraulics (SWMM, seconds to minutes) before simulated time starts: at 600x,
        # a 10 s run inside the first read would skip the scenario's first 100 minutes.
        simulation.advance_to(start_s)
    except HydraulicsError as exc:
        raise SimulationFailedError(f"the simulator failed: {exc}") from exc
    return {d.device_id: d for d in simulation.drivers()}


class SimulationFailedError(XiuhuaError):
    """The simulated devices could not start (the hydraulics failed): not a settings problem."""
