"""The device entry: ``python -m edge_agent --config FILE``, and what ``xiuhua edge`` shares.

A field device installs only ``edge_agent``, ``telemetry_core`` and their libraries (paho-mqtt,
msgspec, structlog, PyYAML), and runs this entry: no CLI framework, no pydantic, no simulator,
which is what keeps one agent under 40 MB resident. Its sensors come from the firmware's own
driver factory, named in the settings as ``edge.driver = "package.module:factory"``: a callable
``(Device, Clock) -> SensorDriver``. ``xiuhua edge`` (development, simulation) adds
``edge.driver = "sim"`` on top of the same pieces.

Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad settings, fleet file or driver,
70 a worker thread died (``thread_died`` in the log; restart it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from edge_agent._agent import EdgeAgent
from edge_agent._build import build_agent, serve
from edge_agent._settings import EdgeSettings, load_edge_settings
from edge_agent.errors import AgentConfigError, EdgeError
from telemetry_core.clock import Clock, ScaledClock, SystemClock
from telemetry_core.driver import SensorDriver
from telemetry_core.errors import XiuhuaError
from telemetry_core.logging import configure_logging
from telemetry_core.registry import Device, load_registry
from telemetry_core.threads import install_excepthook

DriverFactory = Callable[[Device, Clock], SensorDriver]


def agent_clock(
    settings: EdgeSettings, start_s: float | None = None, base: Clock | None = None
) -> Clock:
    """The wall clock (``base``, the system's by default); or simulated time when
    ``edge.sim_speed`` or ``edge.sim_start`` ask for it.

    Simulated time (a :class:`ScaledClock` over ``base``) starts at ``start_s`` when given (a
    caller that already resolved ``edge.sim_start``, to start a simulation at the same instant),
    else at ``edge.sim_start``, and runs ``edge.sim_speed`` times faster than ``base``.
    """
    edge = settings.edge
    wall = base or SystemClock()
    if not edge.simulated_time:
        return wall
    begin_s = edge.sim_start_s(wall.now_s()) if start_s is None else start_s
    return ScaledClock(edge.sim_speed, begin_s, wall)


def configured_devices(settings: EdgeSettings) -> list[Device] | None:
    """The hosted devices from the fleet file or from ``[edge]``; None if neither names one."""
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
    if edge.device_id is None or edge.district is None or edge.kind is None:
        return None
    # Position and attributes are the cloud registry's business; the agent never uses them.
    return [Device(edge.device_id, edge.kind, edge.district, 0.0, 0.0, edge.defaults.interval_s)]


def load_driver_factory(spec: str) -> DriverFactory:
    """``package.module:name`` -> the firmware's driver factory; ``AgentConfigError`` if absent."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise AgentConfigError(f"edge.driver {spec!r}: want package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise AgentConfigError(f"edge.driver {spec!r}: cannot load: {exc}") from exc
    if not callable(factory):
        raise AgentConfigError(f"edge.driver {spec!r} is not callable")
    return cast("DriverFactory", factory)


def summary(agent: EdgeAgent, settings: EdgeSettings) -> str:
    """What the agent is about to do, for people; names the user, never the password."""
    edge, mqtt = settings.edge, settings.mqtt
    mode = f"gateway {edge.gateway_id}" if edge.gateway_id else f"device {edge.device_id}"
    first = agent.devices[0]
    config = first.config.config
    tls = f"on (CA {mqtt.ca_file or 'system'})" if mqtt.use_tls else "off"
    start = f", simulated time from {edge.sim_start}" if edge.simulated_time else ""
    return "\n".join(
        [
            (
                f"xiuhua edge: {mode}, {len(agent.devices)} device(s), driver {edge.driver} "
                f"(scenario {edge.scenario}, speed x{edge.sim_speed:g}{start})"
            ),
            (
                f"  broker   {mqtt.url} as {mqtt.username or '(anonymous)'}, TLS {tls}, QoS 1, "
                "persistent session"
            ),
            (
                f"  spool    {edge.spool_path} ({agent.backlog} waiting), replay <= "
                f"{edge.replay_rate_per_s:g} msg/s"
            ),
            (
                f"  sampling every {config.interval_s:g} s, heartbeat after "
                f"{config.max_silence_s:g} s of silence, median of {config.median_window}, "
                f"config v{first.config.version}"
            ),
            "  stop with Ctrl-C or SIGTERM (unsent messages stay in the spool)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_agent --config FILE``: run until SIGINT/SIGTERM; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m edge_agent",
        description="Run the Xiuhua edge agent with the firmware's own sensor driver "
        "(edge.driver = 'package.module:factory'). Exit codes: 0 clean stop, 1 failed, 2 bad "
        "settings, 70 a worker thread died (restart it).",
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="settings TOML")
    args = parser.parse_args(argv)
    try:
        settings = load_edge_settings(args.config)
        configure_logging(settings.log.level, json=settings.log.json_lines)
        install_excepthook()  # any thread that dies ends the process (exit 70)
        agent = _device_agent(settings)
    except (XiuhuaError, ValueError) as exc:
        print(f"edge_agent: {exc}", file=sys.stderr)  # noqa: T201 - the entry's own error line
        return 2
    print(summary(agent, settings), flush=True)  # noqa: T201 - the entry's summary
    try:
        serve(agent)
    except EdgeError as exc:
        print(f"edge_agent: stopped on error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def _device_agent(settings: EdgeSettings) -> EdgeAgent:
    if settings.edge.driver == "sim":
        raise AgentConfigError("edge.driver 'sim' needs the simulator: run `xiuhua edge` instead")
    devices = configured_devices(settings)
    if devices is None:
        raise AgentConfigError(
            "name the device: [registry] path, or edge.device_id with edge.district and edge.kind"
        )
    clock = agent_clock(settings)
    factory = load_driver_factory(settings.edge.driver)
    drivers = {d.device_id: factory(d, clock) for d in devices}
    return build_agent(settings, devices, drivers, clock)
