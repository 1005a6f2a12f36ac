"""A real edge agent process for integration tests, with a deterministic test driver.

Run as ``python -m tests.integration.edge_child CONFIG.toml``: exactly the production wiring
(settings, spool, paho transport, signals) except the driver, which is the ramp below (or a
step at ``XIUHUA_TEST_STEP_AT_S``) so tests can predict every reading.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from edge_agent import build_agent, load_edge_settings, serve
from telemetry_core.clock import Clock, SystemClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.logging import configure_logging
from telemetry_core.registry import Device, load_registry


class RampDriver:
    """A drain node whose level rises 1 mm per second: every sample differs from the last."""

    def __init__(self, device_id: str) -> None:
        self._device_id = device_id

    @property
    def device_id(self) -> str:
        """The device read."""
        return self._device_id

    @property
    def kind(self) -> DeviceKind:
        """Always a drain node."""
        return DeviceKind.DRAIN

    def read(self, at_s: float) -> Mapping[str, float]:
        """A level that ramps with time, and a steady battery."""
        return {"level_m": round((at_s % 10_000) / 1000, 4), "battery_v": 3.6}


class StepDriver(RampDriver):
    """A flat level of 1.0 m that steps to 2.0 m at ``step_at_s`` (epoch seconds)."""

    def __init__(self, device_id: str, step_at_s: float) -> None:
        super().__init__(device_id)
        self._step_at_s = step_at_s

    def read(self, at_s: float) -> Mapping[str, float]:
        """Flat, then one step."""
        return {"level_m": 2.0 if at_s >= self._step_at_s else 1.0, "battery_v": 3.6}


def ramp_driver(device: Device, clock: Clock) -> RampDriver:  # noqa: ARG001 - factory shape
    """The ``edge.driver = "tests.integration.edge_child:ramp_driver"`` factory."""
    return _driver(device.device_id)


def _driver(device_id: str) -> RampDriver:
    step_at = os.environ.get("XIUHUA_TEST_STEP_AT_S")
    return StepDriver(device_id, float(step_at)) if step_at else RampDriver(device_id)


def main(config_path: str) -> None:
    """Build and serve one agent from ``config_path``."""
    settings = load_edge_settings(Path(config_path))
    configure_logging("info", json=True)
    edge = settings.edge
    if settings.registry.path is not None:  # gateway mode: every drain node of the fleet file
        devices = list(load_registry(settings.registry.path))
    else:
        device_id = edge.device_id or "unset"
        district = edge.district or "jiaojiang"
        devices = [Device(device_id, DeviceKind.DRAIN, district, 28.68, 121.44, 1.0)]
    drivers = {d.device_id: _driver(d.device_id) for d in devices}
    serve(build_agent(settings, devices, drivers, SystemClock()))


if __name__ == "__main__":
    main(sys.argv[1])


def network_fault_driver(device: Device, clock: Clock) -> RampDriver:
    """A ramp driver whose factory also plants a bug in the agent's MQTT network thread.

    The agent's message callback raises on the first command that arrives, as an unforeseen
    bug in that thread would (paho re-raises callback errors in its loop). For the test that a
    dead worker thread ends the real agent process: ``edge.driver =
    "tests.integration.edge_child:network_fault_driver"`` with ``python -m edge_agent``.
    """
    from edge_agent._transport import PahoTransport

    def _on_message(*_args: object) -> None:
        raise RuntimeError("injected bug in the network thread")

    PahoTransport._on_message = _on_message  # type: ignore[method-assign,assignment]
    return ramp_driver(device, clock)
