"""Dead-letter records: a refused message, why, and when; as a point and as MQTT JSON.

The device id of a refused message is stored as a *field*, not a tag: it comes from the
attacker's side of the wire and would otherwise create unbounded series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

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
