"""MQTT topics of the wire contract: ``xh/v1/{district}/{kind}/{device_id}/{channel}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from telemetry_core.errors import ContractError, RejectedMessage, RejectReason
from telemetry_core.kinds import DeviceKind

PREFIX: Final = "xh/v1"
# Whole-string patterns (``\A``...``\Z``): ``$`` admits a final newline under ``search``/``match``.
DISTRICT_RE: Final = re.compile(r"\A[a-z]{2,32}\Z")
DEVICE_ID_RE: Final = re.compile(r"\A(?:[a-z0-9][a-z0-9-]{1,62}[a-z0-9]|[a-z0-9]{3})\Z")

TAIZHOU_DISTRICTS: Final = (
    "jiaojiang",
    "huangyan",
    "luqiao",
    "linhai",
    "wenling",
    "yuhuan",
    "tiantai",
    "xianju",
    "sanmen",
)


class Channel(StrEnum):
    """What a topic carries."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD = "cmd"
    CMD_ACK = "cmd_ack"


def check_device_id(device_id: str) -> str:
    """``device_id`` if it is 3-64 lowercase letters, digits and inner hyphens."""
    if not DEVICE_ID_RE.fullmatch(device_id) or len(device_id) > 64:
        raise ContractError(
            f"device id {device_id!r}: want 3-64 of a-z, 0-9 and '-', "
            "not starting or ending with '-'"
        )
    return device_id


def check_district(district: str) -> str:
    """``district`` if it is lowercase pinyin (2-32 letters a-z)."""
    if not DISTRICT_RE.fullmatch(district):
        raise ContractError(f"district {district!r}: want lowercase pinyin, 2-32 letters a-z")
    return district


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed, valid topic. Building one with bad parts raises ``ContractError``."""

    district: str
    kind: DeviceKind
    device_id: str
    channel: Channel

    def __post_init__(self) -> None:
        check_district(self.district)
        check_device_id(self.device_id)
        object.__setattr__(self, "kind", DeviceKind(self.kind))
        object.__setattr__(self, "channel", Channel(self.channel))

    def __str__(self) -> str:
        return f"{PREFIX}/{self.district}/{self.kind.value}/{self.device_id}/{self.channel.value}"

    def sibling(self, channel: Channel) -> Topic:
        """The same device's topic on another channel."""
        return Topic(self.district, self.kind, self.device_id, channel)


def parse_topic(topic: str) -> Topic:
    """Parse a topic string; ``RejectedMessage(BAD_TOPIC)`` says which part is wrong."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise RejectedMessage(
            RejectReason.BAD_TOPIC,
            f"{topic!r}: want {PREFIX}/<district>/<kind>/<device_id>/<channel>",
        )
    _, _, district, kind, device_id, channel = parts
    try:
        return Topic(district, DeviceKind(kind), device_id, Channel(channel))
    except ValueError as exc:
        raise RejectedMessage(RejectReason.BAD_TOPIC, f"{topic!r}: {exc}") from exc


GATEWAY_PREFIX: Final = f"{PREFIX}/_gateway"
"""Gateways are infrastructure, not devices: their own status lives outside the device topics,
so device subscriptions (five levels under ``xh/v1``) never see it."""


def gateway_status_topic(gateway_id: str) -> str:
    """The retained status topic of an edge gateway: ``xh/v1/_gateway/{gateway_id}/status``."""
    return f"{GATEWAY_PREFIX}/{check_device_id(gateway_id)}/{Channel.STATUS.value}"


ALERT_PREFIX: Final = f"{PREFIX}/_alert"
INCIDENT_PREFIX: Final = f"{PREFIX}/_incident"
"""Alert transitions and incidents are the engine's output, not a device's: like gateways they
live outside the device topics (four levels under ``xh/v1``): no device subscription sees them."""


def alert_topic(district: str, device_id: str) -> str:
    """Where a device's alert transitions go: ``xh/v1/_alert/{district}/{device_id}``."""
    return f"{ALERT_PREFIX}/{check_district(district)}/{check_device_id(device_id)}"


def incident_topic(district: str, incident_id: str) -> str:
    """Where an incident's updates go: ``xh/v1/_incident/{district}/{incident_id}``."""
    if not INCIDENT_ID_RE.fullmatch(incident_id):
        raise ContractError(f"incident id {incident_id!r}: want 1-128 of 0-9A-Za-z_.:-")
    return f"{INCIDENT_PREFIX}/{check_district(district)}/{incident_id}"


INCIDENT_ID_RE: Final = re.compile(r"^[0-9A-Za-z_.:-]{1,128}$")


def alert_subscription(district: str | None = None) -> str:
    """A filter for alert transitions, of one district or all."""
    return f"{ALERT_PREFIX}/{district or '+'}/+"


def incident_subscription(district: str | None = None) -> str:
    """A filter for incidents, of one district or all."""
    return f"{INCIDENT_PREFIX}/{district or '+'}/+"


def subscription(
    channel: Channel | None = None,
    district: str | None = None,
    kind: DeviceKind | None = None,
    share_group: str | None = None,
) -> str:
    """A subscription filter, optionally a shared one (``$share/<group>/...``)."""
    parts = [
        PREFIX,
        district or "+",
        kind.value if kind else "+",
        "+",
        channel.value if channel else "+",
    ]
    flt = "/".join(parts)
    return f"$share/{share_group}/{flt}" if share_group else flt
