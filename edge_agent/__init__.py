"""The edge agent: a device-side agent that never loses a reading.

It samples a :class:`telemetry_core.driver.SensorDriver`, filters (median spike rejection,
report by exception, local thresholds), commits every message to a SQLite spool, publishes it
with MQTT v5 QoS 1 and deletes it only on PUBACK; it replays its backlog after outages, takes
remote config and commands, and announces itself with a retained birth and last will.
"""

from edge_agent._agent import LINK_DOWN_REASON, EdgeAgent, GatewayStatus, mark_historical
from edge_agent._build import build_agent, build_runtimes, device_will, gateway_status, serve
from edge_agent._config import (
    AgentConfig,
    ConfigStore,
    Threshold,
    VersionedConfig,
    merge_config,
    parse_config,
)
from edge_agent._device import CommandOutcome, DeviceRuntime, Outgoing, new_boot_id
from edge_agent._filters import Band, Crossing, ExceptionReporter, MedianFilter, ThresholdWatch
from edge_agent._main import (
    DriverFactory,
    agent_clock,
    configured_devices,
    load_driver_factory,
    summary,
)
from edge_agent._pacing import Backoff, TokenBucket
from edge_agent._replay import ReplayPolicy
from edge_agent._security import cloud_acl, device_acl, gateway_acl
from edge_agent._settings import (
    EdgeSection,
    EdgeSettings,
    LogSection,
    MqttSection,
    RegistrySection,
    Secret,
    load_edge_settings,
)
from edge_agent._spool import NewRow, Priority, Spool, SpoolLimits, SpoolRow
from edge_agent._transport import (
    Connected,
    Disconnected,
    MqttLink,
    PahoTransport,
    Published,
    Received,
    Transport,
    TransportEvent,
)
from edge_agent.errors import AgentConfigError, EdgeError, SpoolError, TransportError

__all__ = [
    "LINK_DOWN_REASON",
    "AgentConfig",
    "AgentConfigError",
    "Backoff",
    "Band",
    "CommandOutcome",
    "ConfigStore",
    "Connected",
    "Crossing",
    "DeviceRuntime",
    "Disconnected",
    "DriverFactory",
    "EdgeAgent",
    "EdgeError",
    "EdgeSection",
    "EdgeSettings",
    "ExceptionReporter",
    "GatewayStatus",
    "LogSection",
    "MedianFilter",
    "MqttLink",
    "MqttSection",
    "NewRow",
    "Outgoing",
    "PahoTransport",
    "Priority",
    "Published",
    "Received",
    "RegistrySection",
    "ReplayPolicy",
    "Secret",
    "Spool",
    "SpoolError",
    "SpoolLimits",
    "SpoolRow",
    "Threshold",
    "ThresholdWatch",
    "TokenBucket",
    "Transport",
    "TransportError",
    "TransportEvent",
    "VersionedConfig",
    "agent_clock",
    "build_agent",
    "build_runtimes",
    "cloud_acl",
    "configured_devices",
    "device_acl",
    "device_will",
    "gateway_acl",
    "gateway_status",
    "load_driver_factory",
    "load_edge_settings",
    "mark_historical",
    "merge_config",
    "new_boot_id",
    "parse_config",
    "serve",
    "summary",
]
