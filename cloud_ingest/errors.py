"""Errors of the cloud ingester, rooted at the core's :class:`XiuhuaError`::

    XiuhuaError
    └── IngestError              something in the ingester failed
        ├── SinkError            a database write failed; ``retryable`` and ``status`` say how
        └── IngestConfigError    ingester settings that cannot work together (also a ConfigError)

Rejected *messages* are not errors of the ingester: they are :class:`RejectedMessage` values from
the core, turned into dead-letter records and acknowledged.
"""

from __future__ import annotations

from telemetry_core.errors import ConfigError, XiuhuaError


class IngestError(XiuhuaError):
    """Something in the ingester failed."""


class SinkError(IngestError):
    """A write to the time-series database failed.

    ``retryable`` is true for outages (connection refused, time-outs, 5xx, 429) and for
    configuration faults the operator can fix while we hold the backlog (401, 403, 404);
    false for data the database refuses (400, 413), which the writer isolates point by point.
    ``status`` is the HTTP status, or ``None`` when no response came.
    """

    def __init__(self, detail: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(f"{status if status is not None else 'no response'}: {detail}")
        self.detail = detail
        self.retryable = retryable
        self.status = status


class IngestConfigError(IngestError, ConfigError):
    """Ingester settings that cannot work together (for example a Receive Maximum too small)."""
