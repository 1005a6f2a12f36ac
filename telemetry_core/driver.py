"""The sensor driver port: how an edge agent reads a device's sensors.

Real firmware implements it over Modbus, ADCs or serial lines; ``firmware_sim`` implements it with
physics. The edge agent only knows this protocol, so the same agent code runs against both.

A driver may also implement :class:`LinkProbe`, an optional capability: whether the device's
own uplink (its modem, its cellular cell) works now. The agent asks it before each sample and
keeps a device's messages in its spool while the link is down.
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


@runtime_checkable
class LinkProbe(Protocol):
    """Optional driver capability: whether this device's own network uplink works.

    A real driver answers from its modem's registration state; the simulator from its scenario's
    network outages. While it says down, the agent keeps the device's messages in its spool and
    publishes nothing for it; when it comes back they are replayed, marked historical, in order.
    A driver without it is taken to be always up (the MQTT connection is then the only link).
    """

    def link_up(self, at_s: float) -> bool:
        """Whether the device can reach the network at ``at_s`` (epoch seconds, UTC).

        Called once per sample, so it must be cheap; it should not raise (a
        :class:`DriverError` from it is logged and the link taken to be up, because the agent's
        spool keeps the messages either way).
        """
        ...
