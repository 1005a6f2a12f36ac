"""The alerting service's own messages: its periodic stats and its dead letters.

Both live outside the device topics (five levels under ``xh/v1``), like the alert transitions
(``xh/v1/_alert/...``): the ingester stores them, so InfluxDB keeps one writer.

* ``xh/v1/_alerting/{instance}/stats``: :class:`AlertingStats`, QoS 1, every ``stats_interval_s``;
  stored as the measurement ``alerting_stats``.
* ``xh/v1/_deadletter/alerting``: :class:`AlertingDeadLetter`, QoS 1, one per message the
  service could not handle; stored as ``alerting_rejects``.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

from telemetry_core.errors import ContractError
from telemetry_core.schema import TimestampMs

ALERTING_PREFIX: Final = "xh/v1/_alerting"
ALERTING_STATS_FILTER: Final = f"{ALERTING_PREFIX}/+/stats"
ALERTING_DEADLETTER_TOPIC: Final = "xh/v1/_deadletter/alerting"

_INSTANCE_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
InstanceName = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9_-]{1,64}\Z")]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class AlertingStats(msgspec.Struct, frozen=True, kw_only=True):
    """Cumulative counters of one alerting instance, and its lag and state size now.

    ``lag_ms`` is how far behind wall time the readings evaluated in the last interval were
    (the largest, so a stall shows); ``backlog`` messages received and not yet acknowledged.
    """

    v: int
    instance: InstanceName
    ts: TimestampMs
    received: Count
    evaluated: Count
    transitions: Count
    incidents: Count
    rejected: Count
    checkpoints: Count
    backlog: Count
    unconfirmed: Count
    lag_ms: Annotated[int, msgspec.Meta(ge=-(2**62), le=2**62)]
    state_bytes: Count
    devices: Count = 0


class AlertingDeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message the alerting service could not handle, why, and when (bounded sizes)."""

    topic: Annotated[str, msgspec.Meta(max_length=256)]
    payload: Annotated[str, msgspec.Meta(max_length=1024)]
    reason: Annotated[str, msgspec.Meta(pattern=r"\A[a-z][a-z0-9_]{0,63}\Z")]
    detail: Annotated[str, msgspec.Meta(max_length=512)]
    received_at: str
    received_ms: TimestampMs
    instance: InstanceName
    device_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None


def alerting_stats_topic(instance: str) -> str:
    """The topic of an instance's ``alerting_stats``: ``xh/v1/_alerting/{instance}/stats``."""
    if not _INSTANCE_RE.fullmatch(instance):
        raise ContractError(f"instance {instance!r}: want 1-64 of A-Z, a-z, 0-9, '_' and '-'")
    return f"{ALERTING_PREFIX}/{instance}/stats"
