"""Wiring: settings + devices + drivers -> a ready :class:`EdgeAgent`.

Gateway mode multiplexes all hosted devices over ONE MQTT connection whose client id and
username are the gateway id: a thousand paho clients (a socket and a thread each) would cost
far more than the devices themselves. The price is the last will: MQTT allows one will per
connection, so a crashed gateway's will is the *gateway's* ``offline`` status (on the topic of
the gateway id under the first device's district and kind), and each hosted device's retained
birth names its gateway in ``reason`` (``via gateway <id>``). The cloud marks a hosted device
offline when its gateway's status says so, or when its expected interval passes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping, Sequence

import structlog

from edge_agent._agent import EdgeAgent, GatewayStatus
from edge_agent._config import ConfigStore
from edge_agent._device import DeviceRuntime, new_boot_id
from edge_agent._pacing import Backoff
from edge_agent._replay import ReplayPolicy
from edge_agent._settings import EdgeSettings
from edge_agent._spool import Spool
from edge_agent._transport import PahoTransport, Transport, WillFactory
from edge_agent.errors import AgentConfigError
from telemetry_core.clock import Clock, now_ms
from telemetry_core.driver import SensorDriver
from telemetry_core.registry import Device
from telemetry_core.schema import CONTRACT_VERSION, Status, encode
from telemetry_core.topics import Channel, Topic, gateway_status_topic

log = structlog.get_logger()


def build_runtimes(
    settings: EdgeSettings,
    devices: Sequence[Device],
    drivers: Mapping[str, SensorDriver],
    clock: Clock,
) -> list[DeviceRuntime]:
    """One runtime per device, each with its persisted config; first samples spread over a cycle."""
    edge = settings.edge
    runtimes: list[DeviceRuntime] = []
    for index, device in enumerate(devices):
        driver = drivers.get(device.device_id)
        if driver is None:
            raise AgentConfigError(f"no driver for device {device.device_id}")
        topic = Topic(device.district, device.kind, device.device_id, Channel.TELEMETRY)
        store = ConfigStore(edge.config_path(device.device_id), device.kind, edge.defaults)
        runtime = DeviceRuntime(topic, driver, store, clock, edge.firmware)
        # Spreading first samples keeps a gateway from reading every device in the same tick.
        runtime.next_due_s += runtime.config.config.interval_s * index / max(1, len(devices))
        runtimes.append(runtime)
    return runtimes


def device_will(runtime: DeviceRuntime) -> WillFactory:
    """The will of a one-device agent: its own retained ``offline`` status for the current boot."""

    def will() -> tuple[str, bytes]:
        status = runtime.status("offline", "connection_lost")
        return str(runtime.topic.sibling(Channel.STATUS)), encode(status)

    return will


def gateway_status(gateway_id: str, clock: Clock, firmware: str) -> GatewayStatus:
    """The gateway's own retained status (birth, shutdown and will), on its own status topic."""
    topic = gateway_status_topic(gateway_id)
    boot_id = new_boot_id()

    def status(state: str, reason: str) -> tuple[str, bytes]:
        message = Status(
            v=CONTRACT_VERSION,
            device_id=gateway_id,
            ts=now_ms(clock),
            boot_id=boot_id,
            state="online" if state == "online" else "offline",
            firmware=firmware,
            reason=reason,
        )
        return topic, encode(message)

    return status


def build_agent(
    settings: EdgeSettings,
    devices: Sequence[Device],
    drivers: Mapping[str, SensorDriver],
    clock: Clock,
    transport: Transport | None = None,
) -> EdgeAgent:
    """An agent for ``devices`` (one, or many in gateway mode) with its spool and transport."""
    edge = settings.edge
    if not devices:
        raise AgentConfigError("no devices to run")
    if edge.device_id is not None and len(devices) != 1:
        raise AgentConfigError(f"one-device mode wants exactly one device, got {len(devices)}")
    runtimes = build_runtimes(settings, devices, drivers, clock)
    gateway = None
    if edge.gateway_id is not None:
        gateway = gateway_status(edge.gateway_id, clock, edge.firmware)
        for runtime in runtimes:
            runtime.birth_reason = f"via gateway {edge.gateway_id}"
    if transport is None:
        transport = _paho_transport(settings, runtimes, gateway)
    spool = Spool(edge.spool_path, edge.spool_limits, edge.spool_synchronous)
    policy = ReplayPolicy(edge.replay_rate_per_s, edge.replay_burst, edge.max_inflight)
    return EdgeAgent(
        runtimes, transport, spool, clock, policy=policy, gateway=gateway, speed=edge.sim_speed
    )


def _paho_transport(
    settings: EdgeSettings, runtimes: Sequence[DeviceRuntime], gateway: GatewayStatus | None
) -> PahoTransport:
    edge = settings.edge
    will: WillFactory
    if edge.gateway_id is not None and gateway is not None:
        client_id = edge.gateway_id
        will = lambda: gateway("offline", "gateway connection lost; its devices are offline")  # noqa: E731
    else:
        client_id = runtimes[0].device_id
        will = device_will(runtimes[0])
    return PahoTransport(
        settings.mqtt,
        settings.mqtt.client_id or client_id,
        will,
        session_expiry_s=edge.session_expiry_s,
        max_inflight=edge.max_inflight,
        backoff=Backoff(edge.reconnect_min_s, edge.reconnect_max_s),
    )


def serve(agent: EdgeAgent) -> None:
    """Run ``agent`` in this thread until SIGINT or SIGTERM, then shut it down cleanly."""
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        # Nothing here may take a lock the interrupted main thread can hold. Logging does (the
        # logger's write lock): a signal landing while a log line was being written waited
        # for that lock forever, and the process lived on doing nothing. The stop is logged
        # by the agent, outside the handler.
        stop.set()
        agent.wake()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    agent.run(stop)
