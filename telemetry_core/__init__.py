"""The shared contract of Xiuhua: wire format, device kinds, registry, line protocol, settings.

Shapes only: no clients, no loops. Every component imports this package; it imports none of them.
"""

from telemetry_core.clock import (
    Clock,
    ManualClock,
    ScaledClock,
    SystemClock,
    ms_to_datetime,
    now_ms,
)
from telemetry_core.driver import DriverError, SensorDriver
from telemetry_core.errors import (
    ConfigError,
    ContractError,
    LineProtocolError,
    RegistryError,
    RejectedMessage,
    RejectReason,
    ServiceError,
    XiuhuaError,
)
from telemetry_core.kinds import (
    KINDS,
    WASTE_CATEGORIES,
    DeviceKind,
    KindSpec,
    MetricSpec,
    kind_spec,
)
from telemetry_core.line_protocol import encode_point, ms_to_ns
from telemetry_core.registry import Device, Registry, load_registry, write_registry_csv
from telemetry_core.schema import (
    CONTRACT_VERSION,
    Command,
    CommandAck,
    Event,
    Quality,
    Severity,
    Status,
    Telemetry,
    decode,
    encode,
)
from telemetry_core.topics import TAIZHOU_DISTRICTS, Channel, Topic, parse_topic, subscription

__all__ = [
    "CONTRACT_VERSION",
    "KINDS",
    "TAIZHOU_DISTRICTS",
    "WASTE_CATEGORIES",
    "Channel",
    "Clock",
    "Command",
    "CommandAck",
    "ConfigError",
    "ContractError",
    "Device",
    "DeviceKind",
    "DriverError",
    "Event",
    "KindSpec",
    "LineProtocolError",
    "ManualClock",
    "MetricSpec",
    "Quality",
    "Registry",
    "RegistryError",
    "RejectReason",
    "RejectedMessage",
    "ScaledClock",
    "SensorDriver",
    "ServiceError",
    "Severity",
    "Status",
    "SystemClock",
    "Telemetry",
    "Topic",
    "XiuhuaError",
    "decode",
    "encode",
    "encode_point",
    "kind_spec",
    "load_registry",
    "ms_to_datetime",
    "ms_to_ns",
    "now_ms",
    "parse_topic",
    "subscription",
    "write_registry_csv",
]
