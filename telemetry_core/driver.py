"""The sensor driver port: how an edge agent reads a device's sensors.

Real firmware implements it over Modbus, ADCs or serial lines; ``firmware_sim`` implements it with
physics. The edge agent only knows this protocol, so the same agent code runs against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from telemetry_core.errors import XiuhuaError
from telemetry_core.kinds import DeviceKind


class DriverError(XiuhuaError):
    """A sensor could not be read. The agent reports it as a device fault and carries on."""

    def __init__(self, device_id: str, detail: str, metric: str | None = None) -> None:
        super().__init__(f"{device_id}: {detail}")
        self.device_id = device_id
        self.detail = detail
        self.metric = metric


@runtime_checkable
class SensorDriver(Protocol):
    """Reads one device's sensors."""

    @property
    def device_id(self) -> str:
        """The device this driver reads."""
        ...

    @property
    def kind(self) -> DeviceKind:
        """The device's kind; its metrics are the kind's metric names."""
        ...

    def read(self, at_s: float) -> Mapping[str, float]:
        """Read every sensor at time ``at_s`` (seconds since the epoch, UTC).

        Returns finite values keyed by metric name; a sensor that cannot be read is left out or,
        when the whole device fails, :class:`DriverError` is raised.
        """
        ...
