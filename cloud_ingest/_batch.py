"""Batches: messages drained from the inbox, made into points, written and acked together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import structlog

from cloud_ingest._deadletter import Rejection
from cloud_ingest._pipeline import Pipeline
from telemetry_core.errors import RejectedMessage, RejectReason

log = structlog.get_logger()

INTERNAL_ERROR_LOG_INTERVAL_MS: Final = 10_000
"""At most one ``message_internal_error`` log line per interval; the rest are counted."""


class Inbound(Protocol):
    """A received MQTT message: our ``Delivery`` or paho's ``MQTTMessage``."""

    @property
    def topic(self) -> str:
        """The topic it was published on."""
        ...

    @property
    def payload(self) -> bytes:
        """The payload, as received."""
        ...

    @property
    def mid(self) -> int:
        """The packet id, valid on the connection that delivered the message."""
        ...

    @property
    def qos(self) -> int:
        """0, 1 or 2."""
        ...

    @property
    def dup(self) -> bool:
        """Set by the broker on a redelivery."""
        ...


@dataclass(slots=True)
class Batch:
    """Points to write and the messages to acknowledge once the sink has them.

    ``origins[i]`` is the index in ``messages`` of the message that produced ``lines[i]``,
    or -1 for a dead-letter point, so a point the database refuses leads back to its message.
    """

    generation: int
    messages: Sequence[Inbound]
    received_ms: int
    lines: list[str] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    redelivered: int = 0
    sealed_s: float = 0.0
    """Monotonic time the batch was built, for the batch latency."""

    @property
    def accepted(self) -> int:
        """Messages that became readings."""
        return len(self.ts_ms)


class BatchBuilder:
    """Runs the pipeline over drained messages; refusals become dead-letter points in the batch."""

    def __init__(self, pipeline: Pipeline, instance: str) -> None:
        self._pipeline = pipeline
        self._instance = instance
        self._last_reject_ns = 0
        self._internal_errors_unlogged = 0
        self._internal_error_logged_ms = -INTERNAL_ERROR_LOG_INTERVAL_MS

    def build(self, messages: Sequence[Inbound], generation: int, now_ms: int) -> Batch:
        """A batch of ``messages`` received around ``now_ms`` on connection ``generation``."""
        batch = Batch(generation=generation, messages=messages, received_ms=now_ms)
        process = self._pipeline.process
        lines, origins, stamps = batch.lines, batch.origins, batch.ts_ms
        for index, msg in enumerate(messages):
            topic = topic_of(msg)
            try:
                accepted = process(topic, msg.payload, now_ms)
            except Exception as exc:  # noqa: BLE001 - one message may never stop the stream
                self._refuse(batch, topic, msg.payload, exc, now_ms)
                continue
            lines.append(accepted.line)
            origins.append(index)
            stamps.append(accepted.ts_ms)
            batch.duplicates += accepted.duplicate
            batch.redelivered += msg.dup
        return batch

    def _refuse(
        self, batch: Batch, topic: str, payload: bytes, exc: Exception, now_ms: int
    ) -> None:
        """Dead-letter one message: its reason, or ``internal_error`` for the unforeseen."""
        try:
            if isinstance(exc, RejectedMessage):
                self.add_rejection(batch, self.rejection(topic, payload, exc, now_ms))
            else:
                self.add_rejection(batch, self._internal_error(topic, payload, exc, now_ms))
        except Exception as failure:  # noqa: BLE001 - the record itself would not encode
            detail = f"dead letter unwritable ({type(failure).__name__}); topic, payload as ascii"
            safe = Rejection.of(ascii(topic), ascii(payload).encode(), RejectReason.INTERNAL_ERROR,
                                detail, now_ms)  # fmt: skip
            self.add_rejection(batch, safe)

    def rejection(self, topic: str, payload: bytes, exc: RejectedMessage, now_ms: int) -> Rejection:
        """The dead-letter record of a refused message, tagged from its topic when it parses."""
        district, kind, device_id = self._pipeline.topic_tags(topic)
        return Rejection.of(
            topic, payload, exc.reason, exc.detail, now_ms,
            district=district, kind=kind, device_id=device_id,
        )  # fmt: skip

    def _internal_error(self, topic: str, payload: bytes, exc: Exception, now_ms: int) -> Rejection:
        """The dead-letter record of a message the pipeline failed on unexpectedly."""
        name = type(exc).__name__
        detail = f"{name}: {_text_of(exc)}"
        self._log_internal_error(topic, name, detail, now_ms)
        refusal = RejectedMessage(RejectReason.INTERNAL_ERROR, detail)
        try:
            return self.rejection(topic, payload, refusal, now_ms)
        except Exception:  # noqa: BLE001 - the topic that broke the pipeline may break tagging
            return Rejection.of(topic, payload, RejectReason.INTERNAL_ERROR, detail, now_ms)

    def _log_internal_error(self, topic: str, error: str, detail: str, now_ms: int) -> None:
        if now_ms - self._internal_error_logged_ms < INTERNAL_ERROR_LOG_INTERVAL_MS:
            self._internal_errors_unlogged += 1
            return
        log.error(
            "message_internal_error",
            topic=topic[:256],
            error=error,
            detail=detail[:300],
            unlogged_since=self._internal_errors_unlogged,
            action="dead-lettered as internal_error and acknowledged",
        )
        self._internal_error_logged_ms, self._internal_errors_unlogged = now_ms, 0

    def add_rejection(self, batch: Batch, rejection: Rejection) -> None:
        """Add a dead-letter point with a timestamp no other reject of this instance has."""
        time_ns = max(self._last_reject_ns + 1, rejection.received_ms * 1_000_000)
        line = rejection.to_line(self._instance, time_ns)  # first: it may raise
        self._last_reject_ns = time_ns
        batch.rejections.append(rejection)
        batch.lines.append(line)
        batch.origins.append(-1)


def _text_of(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still has a type
        return "(no description)"


def topic_of(msg: Inbound) -> str:
    """The topic of ``msg`` as text, even if a broker let a non-UTF-8 topic through."""
    try:
        return msg.topic
    except UnicodeDecodeError:
        # paho decodes topics as UTF-8; a broker should refuse others, but never trust it.
        raw: bytes = getattr(msg, "_topic", b"")
        return raw.decode("utf-8", errors="replace")
