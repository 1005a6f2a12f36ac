"""The one error root of Xiuhua, and the errors of the shared contract.

Every error raised on purpose by Xiuhua code derives from :class:`XiuhuaError`::

    XiuhuaError
    ├── ContractError            a topic, payload or value breaks the wire contract
    │   └── RejectedMessage      a message refused by a parser; carries a machine-readable reason
    ├── ConfigError              settings, rules or routes that do not validate
    ├── RegistryError            a fleet file that does not load; names the line
    ├── LineProtocolError        a point that cannot be written as line protocol
    ├── ServiceError             a local service (Mosquitto, InfluxDB, ...) did not start or answer
    └── (per component)          each component's ``errors.py`` hangs its own tree here

``ContractError`` is also a ``ValueError``, so value objects that refuse bad data when built
raise something a caller can catch either way.
"""

from __future__ import annotations

from enum import StrEnum


class XiuhuaError(Exception):
    """The root of every error Xiuhua raises on purpose."""


class ContractError(XiuhuaError, ValueError):
    """A topic, payload or value that breaks the wire contract."""


class RejectReason(StrEnum):
    """Why a message was refused. Stable strings: they are stored and counted by reason."""

    BAD_TOPIC = "bad_topic"
    MALFORMED_JSON = "malformed_json"
    NOT_UTF8 = "not_utf8"
    SCHEMA = "schema"
    UNSUPPORTED_VERSION = "unsupported_version"
    NON_FINITE = "non_finite"
    OVERSIZED = "oversized"
    TS_FUTURE = "ts_future"
    TS_PAST = "ts_past"
    UNKNOWN_DEVICE = "unknown_device"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_METRIC = "unknown_metric"
    OUT_OF_RANGE = "out_of_range"
    WRITE_REJECTED = "write_rejected"
    INTERNAL_ERROR = "internal_error"
    """The consumer failed on this message in a way nobody foresaw; the detail names the
    exception type. The message is dead-lettered and acknowledged, and the stream goes on."""


class RejectedMessage(ContractError):  # noqa: N818 - the refused message, caught as such
    """A message refused by a parser, with a machine-readable ``reason`` and a human ``detail``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class ConfigError(XiuhuaError):
    """Settings, rules or routes that do not validate."""


class RegistryError(XiuhuaError):
    """A fleet file that does not load. The message names the file and line."""


class LineProtocolError(XiuhuaError, ValueError):
    """A point that cannot be encoded as InfluxDB line protocol (for example NaN or inf)."""


class ServiceError(XiuhuaError):
    """A local service did not start, did not answer in time, or died."""
