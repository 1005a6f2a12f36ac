"""``xiuhua edge``: run an edge agent (one device, or a gateway of many) until SIGINT or SIGTERM."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edge_agent import EdgeAgent, EdgeSettings
    from telemetry_core.clock import Clock
    from telemetry_core.driver import SensorDriver
    from telemetry_core.registry import Device

app = typer.Typer(
    help=(
        "Run an edge agent: read a device's sensors, filter them (median spike rejection, "
        "report by exception, local alarm thresholds), keep every message in a SQLite spool "
        "until the MQTT broker acknowledges it, replay the backlog after an outage, and obey "
        "remote config and commands. One device per process (edge.device_id) or a gateway "
        "hosting many simulated devices over one connection (edge.gateway_id).\n\n"
        "Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad settings or fleet file."
    ),
    invoke_without_command=True,
)


@app.callback(invoke_without_command=True)
def edge(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
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
    from edge_agent import EdgeError, serve
    from telemetry_core.errors import ConfigError, RegistryError

    try:
        agent, settings = _build(config)
    except (ConfigError, RegistryError, EdgeError, ValueError) as exc:
        typer.echo(f"xiuhua edge: {exc}", err=True)
        raise typer.Exit(2) from exc
    _summary(agent, settings)
    try:
        serve(agent)
    except EdgeError as exc:
        typer.echo(f"xiuhua edge: stopped on error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("acl")
def acl(
    fleet: Annotated[
        Path | None, typer.Option("--fleet", help="Fleet file of the devices a gateway hosts.")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="Gateway id (its MQTT username).")
    ] = None,
    cloud_user: Annotated[
        str | None, typer.Option("--cloud-user", help="A cloud service user: reads all, commands.")
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
    from edge_agent import EdgeSettings, build_agent
    from telemetry_core.logging import configure_logging
    from telemetry_core.settings import load_settings

    settings = load_settings(EdgeSettings, config)
    configure_logging(settings.log.level, json=settings.log.json_lines)
    clock = _clock(settings)
    devices = _devices(settings)
    drivers = _sim_drivers(settings, devices, clock)
    return build_agent(settings, devices, drivers, clock), settings


def _clock(settings: EdgeSettings) -> Clock:
    from telemetry_core.clock import ScaledClock, SystemClock

    speed = settings.edge.sim_speed
    return SystemClock() if speed == 1.0 else ScaledClock(speed)


def _devices(settings: EdgeSettings) -> list[Device]:
    """The hosted devices: from the fleet file if there is one, else a simulated fleet."""
    from edge_agent import AgentConfigError
    from telemetry_core.registry import load_registry

    edge = settings.edge
    if settings.registry.path is not None:
        fleet = list(load_registry(settings.registry.path))
        if edge.device_id is not None:
            chosen = [d for d in fleet if d.device_id == edge.device_id]
            if not chosen:
                raise AgentConfigError(f"{edge.device_id} is not in {settings.registry.path}")
            return chosen
        return [
            d
            for d in fleet
            if (edge.district is None or d.district == edge.district)
            and (edge.kind is None or d.kind is edge.kind)
        ]
    from firmware_sim import make_fleet

    if edge.device_id is not None:
        (device,) = make_fleet(edge.district, edge.kind, 1, edge.seed)
        return [dataclasses.replace(device, device_id=edge.device_id)]
    return make_fleet(edge.district, edge.kind, edge.sim_fleet_size, edge.seed)


def _sim_drivers(
    settings: EdgeSettings, devices: Sequence[Device], clock: Clock
) -> dict[str, SensorDriver]:
    from firmware_sim import FleetSimulation, load_scenario

    edge = settings.edge
    simulation = FleetSimulation(devices, load_scenario(edge.scenario), edge.seed, clock.now_s())
    return {d.device_id: d for d in simulation.drivers()}


def _summary(agent: EdgeAgent, settings: EdgeSettings) -> None:
    edge, mqtt = settings.edge, settings.mqtt
    mode = f"gateway {edge.gateway_id}" if edge.gateway_id else f"device {edge.device_id}"
    first = agent.devices[0]
    config = first.config.config
    lines = [
        (
            f"xiuhua edge: {mode}, {len(agent.devices)} device(s), driver {edge.driver} "
            f"(scenario {edge.scenario}, speed x{edge.sim_speed:g})"
        ),
        (
            f"  broker   {mqtt.url} as {mqtt.username or '(anonymous)'}, "
            f"TLS {'on' if mqtt.use_tls else 'off'}, QoS 1, persistent session"
        ),
        (
            f"  spool    {edge.spool_path} ({agent.backlog} waiting), replay <= "
            f"{edge.replay_rate_per_s:g} msg/s"
        ),
        (
            f"  sampling every {config.interval_s:g} s, heartbeat after {config.max_silence_s:g} s "
            f"of silence, median of {config.median_window}, config v{first.config.version}"
        ),
        "  stop with Ctrl-C or SIGTERM (unsent messages stay in the spool)",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)  # noqa: T201 - the CLI's summary
