"""Dead-letter records: a refused message, why, and when; as a point and as MQTT JSON.

The device id of a refused message is stored as a *field*, not a tag: it comes from the
attacker's side of the wire and would otherwise create unbounded series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
import structlog

from telemetry_core.clock import ms_to_datetime
from telemetry_core.errors import RejectReason
from telemetry_core.line_protocol import encode_point

REJECTS_MEASUREMENT: Final = "ingest_rejects"
MAX_TOPIC_CHARS: Final = 256
MAX_PAYLOAD_BYTES_KEPT: Final = 1024
MAX_DETAIL_CHARS: Final = 512


class _DeadLetterJson(msgspec.Struct, frozen=True):
    topic: str
    payload: str
    reason: str
    detail: str
    received_at: str
    received_ms: int
    device_id: str | None
    instance: str


_JSON: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused message, bounded so that a hostile payload cannot inflate the record."""

    topic: str
    payload: str
    reason: RejectReason
    detail: str
    received_ms: int
    district: str | None = None
    kind: str | None = None
    device_id: str | None = None

    @classmethod
    def of(
        cls,
        topic: str,
        payload: bytes,
        reason: RejectReason,
        detail: str,
        received_ms: int,
        *,
        district: str | None = None,
        kind: str | None = None,
        device_id: str | None = None,
    ) -> Rejection:
        """A record with topic, payload and detail cut to their bounds."""
        return cls(
            topic=topic[:MAX_TOPIC_CHARS],
            payload=payload[:MAX_PAYLOAD_BYTES_KEPT].decode("utf-8", errors="replace"),
            reason=reason,
            detail=detail[:MAX_DETAIL_CHARS],
            received_ms=received_ms,
            district=district,
            kind=kind,
            device_id=device_id[:MAX_TOPIC_CHARS] if device_id else None,
        )

    def to_line(self, instance: str, time_ns: int) -> str:
        """The ``ingest_rejects`` point; ``time_ns`` is unique per instance so none overwrite."""
        tags = {"reason": self.reason.value, "instance": instance}
        if self.district:
            tags["district"] = self.district
        if self.kind:
            tags["kind"] = self.kind
        fields: dict[str, str] = {
            "topic": printable(self.topic),
            "payload": printable(self.payload),
            "detail": printable(self.detail),
        }
        if self.device_id:
            fields["device_id"] = printable(self.device_id)
        return encode_point(REJECTS_MEASUREMENT, tags, fields, time_ns)

    def to_json(self, instance: str) -> bytes:
        """The dead-letter MQTT payload; ``received_at`` is ISO 8601 UTC."""
        received_at = ms_to_datetime(self.received_ms).isoformat(timespec="milliseconds")
        return _JSON.encode(
            _DeadLetterJson(
                topic=self.topic,
                payload=self.payload,
                reason=self.reason.value,
                detail=self.detail,
                received_at=received_at,
                received_ms=self.received_ms,
                device_id=self.device_id,
                instance=instance,
            )
        )


_CONTROL: Final = {c: f"\\x{c:02x}" for c in range(32) if c not in (9,)}


def printable(text: str) -> str:
    """``text`` with control characters (tab aside) written as ``\\xNN``."""
    # Control characters (newlines included) are made visible: InfluxDB 1.x accepts a newline
    # inside a quoted string field, but a line-oriented reader of the export would not.
    return text.translate(_CONTROL)


class PublishOutcomes:
    """Which dead-letter publish each packet id was, so a refusal is logged, not silent.

    An MQTT v5 broker answers a publish it refuses (an ACL without write access) with a
    PUBACK reason code of 0x80 or more, such as 0x87 "Not authorized"; paho reports it to
    ``on_publish`` and would otherwise drop it. Runs in the network thread only.
    """

    MAX_PENDING: Final = 20_000

    def __init__(self) -> None:
        self._topics: dict[int, str] = {}
        self.denied = 0

    def sent(self, mid: int, topic: str) -> None:
        """Remember the topic of packet ``mid`` until its PUBACK (bounded: oldest forgotten)."""
        if len(self._topics) >= self.MAX_PENDING:
            self._topics.pop(next(iter(self._topics)))
        self._topics[mid] = topic

    def on_publish(self, _client: Any, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        """paho's ``on_publish`` (VERSION2): log ``publish_denied`` for a failure reason code."""
        topic = self._topics.pop(mid, None)
        if getattr(reason, "is_failure", False):
            self.denied += 1
            structlog.get_logger().error(
                "publish_denied",
                topic=topic,
                reason=str(reason),
                code=getattr(reason, "value", None),
            )
