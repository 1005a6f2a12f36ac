"""The contract's public surface is what we meant, and its small pieces behave."""

from __future__ import annotations

import pytest

import telemetry_core
from telemetry_core.clock import ManualClock, ScaledClock, now_ms
from telemetry_core.kinds import KINDS, DeviceKind, kind_spec

EXPECTED_EXPORTS = {
    # values and constants of the wire contract
    "CONTRACT_VERSION", "KINDS", "TAIZHOU_DISTRICTS", "WASTE_CATEGORIES",
    "Channel", "Topic", "parse_topic", "subscription",
    "Telemetry", "Event", "Status", "Command", "CommandAck", "Quality", "Severity",
    "decode", "encode", "encode_point", "ms_to_ns",
    # the engine's output (issue 10)
    "AlertTransition", "Prediction", "Incident", "TIERS",
    "alert_topic", "alert_subscription", "incident_topic", "incident_subscription",
    "DeviceKind", "KindSpec", "MetricSpec", "kind_spec",
    "Device", "Registry", "load_registry", "write_registry_csv",
    # ports
    "Clock", "SystemClock", "ManualClock", "ScaledClock", "now_ms", "ms_to_datetime",
    "SensorDriver", "DriverError",
    # errors
    "XiuhuaError", "ContractError", "RejectedMessage", "RejectReason", "ConfigError",
    "RegistryError", "LineProtocolError", "ServiceError",
}  # fmt: skip


def test_exported_members_are_what_we_meant() -> None:
    assert set(telemetry_core.__all__) == EXPECTED_EXPORTS
    assert len(telemetry_core.__all__) == len(EXPECTED_EXPORTS)
    for name in telemetry_core.__all__:
        assert getattr(telemetry_core, name) is not None


def test_every_kind_has_metrics_with_units_in_their_names() -> None:
    assert set(KINDS) == set(DeviceKind)
    for spec in KINDS.values():
        assert spec.metrics
        for name, metric in spec.metrics.items():
            assert name == metric.name
            assert metric.low < metric.high
            assert "_" in name
    assert kind_spec("drain").metrics["level_m"].in_range(1.0)
    assert not kind_spec("drain").metrics["level_m"].in_range(99.0)
    with pytest.raises(ValueError, match="sewer"):
        kind_spec("sewer")


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(start_s=100.0)
    clock.advance(1.5)
    assert clock.now_s() == 101.5
    assert clock.monotonic_s() == 1.5
    assert now_ms(clock) == 101_500
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def test_scaled_clock_runs_faster() -> None:
    base = ManualClock(start_s=0.0)
    clock = ScaledClock(speed=60.0, start_s=1_000.0, base=base)
    base.advance(2.0)
    assert clock.now_s() == 1_120.0
    assert clock.monotonic_s() == 120.0
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(speed=0)
