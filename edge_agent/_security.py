"""Broker ACLs that keep each device to its own topics.

A device's MQTT username is its device id, so one set of Mosquitto ``pattern`` lines (``%u`` is
the username) covers the whole fleet: a device may write its telemetry, events, status and
command acks, and read its commands, and nothing else. A gateway user gets explicit ``topic``
lines for the devices it hosts. Passwords are made with ``mosquitto_passwd`` (the services
package does that for tests); they never appear here or in logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from telemetry_core.registry import Device
from telemetry_core.topics import PREFIX, Channel, check_device_id, gateway_status_topic

_DEVICE_WRITES = (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS, Channel.CMD_ACK)


def device_acl() -> str:
    """Mosquitto ``pattern`` lines: each user only under ``xh/v1/+/+/<username>/...``."""
    lines = ["# every device: its own topics only (username = device id)"]
    lines += [f"pattern write {PREFIX}/+/+/%u/{c.value}" for c in _DEVICE_WRITES]
    lines.append(f"pattern read {PREFIX}/+/+/%u/{Channel.CMD.value}")
    return "\n".join(lines) + "\n"


def gateway_acl(gateway_id: str, devices: Iterable[Device]) -> str:
    """``user``/``topic`` lines letting ``gateway_id`` act for exactly ``devices``."""
    check_device_id(gateway_id)
    lines = [f"user {gateway_id}", f"topic write {gateway_status_topic(gateway_id)}"]
    for device in devices:
        base = f"{PREFIX}/{device.district}/{device.kind.value}/{device.device_id}"
        lines += [f"topic write {base}/{c.value}" for c in _DEVICE_WRITES]
        lines.append(f"topic read {base}/{Channel.CMD.value}")
    return "\n".join(lines) + "\n"


CLOUD_READS: Final = (f"{PREFIX}/#", "$SYS/broker/#")
"""Everything devices send (ingester, alerting), and the broker's counters: the ingester's
broker-drop watch reads ``$SYS/broker/publish/messages/dropped`` and ``$SYS/broker/uptime``
(``#`` alone never matches a ``$`` topic)."""
CLOUD_WRITES: Final = (
    f"{PREFIX}/_deadletter/#",  # refused messages, with the reason (ingester, alerting)
    f"{PREFIX}/_alert/#",  # alert transitions (alerting)
    f"{PREFIX}/_incident/#",  # incidents (alerting)
    f"{PREFIX}/+/+/+/{Channel.CMD.value}",  # commands to devices (operators, dispatch)
)


def cloud_acl(username: str) -> str:
    """``user``/``topic`` lines for the cloud services' user: what every documented cloud
    function needs (:data:`CLOUD_READS`, :data:`CLOUD_WRITES`), and nothing a device owns."""
    lines = [f"user {username}"]
    lines += [f"topic read {topic}" for topic in CLOUD_READS]
    lines += [f"topic write {topic}" for topic in CLOUD_WRITES]
    return "\n".join(lines) + "\n"
