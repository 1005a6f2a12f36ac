"""The public surface of edge_agent is exactly what is meant (and every name resolves)."""

from __future__ import annotations

import edge_agent

EXPECTED = {
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
    "EdgeAgent",
    "EdgeError",
    "EdgeSection",
    "EdgeSettings",
    "ExceptionReporter",
    "GatewayStatus",
    "MedianFilter",
    "NewRow",
    "Outgoing",
    "PahoTransport",
    "Priority",
    "Published",
    "Received",
    "ReplayPolicy",
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
    "build_agent",
    "build_runtimes",
    "cloud_acl",
    "device_acl",
    "device_will",
    "gateway_acl",
    "gateway_status",
    "mark_historical",
    "merge_config",
    "new_boot_id",
    "parse_config",
    "serve",
}


def test_exported_names() -> None:
    assert set(edge_agent.__all__) == EXPECTED
    assert all(hasattr(edge_agent, name) for name in edge_agent.__all__)
