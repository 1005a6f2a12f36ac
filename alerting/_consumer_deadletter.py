"""Dead letters of the alerting service: the message, why it was set aside, and when."""

from __future__ import annotations

from typing import Final

import msgspec

from telemetry_core.alerting_wire import AlertingDeadLetter
from telemetry_core.clock import ms_to_datetime

MAX_TOPIC_CHARS: Final = 256
MAX_PAYLOAD_BYTES_KEPT: Final = 1024
MAX_DETAIL_CHARS: Final = 512
_JSON: Final = msgspec.json.Encoder()


def dead_letter(
    topic: str,
    payload: bytes,
    *,
    reason: str,
    detail: str,
    received_ms: int,
    instance: str,
    device_id: str | None = None,
) -> bytes:
    """The JSON dead letter of a message, cut to bounds a hostile payload cannot inflate."""
    record = AlertingDeadLetter(
        topic=topic[:MAX_TOPIC_CHARS],
        payload=bytes(payload[:MAX_PAYLOAD_BYTES_KEPT]).decode("utf-8", errors="replace")[
            :MAX_PAYLOAD_BYTES_KEPT
        ],
        reason=reason,
        detail=detail[:MAX_DETAIL_CHARS],
        received_at=ms_to_datetime(received_ms).isoformat(timespec="milliseconds"),
        received_ms=received_ms,
        instance=instance,
        device_id=device_id[:MAX_TOPIC_CHARS] if device_id else None,
    )
    return _JSON.encode(record)


def topic_text(msg: object) -> str:
    """The topic of a received message as text, even if a broker let a non-UTF-8 one through."""
    try:
        return str(msg.topic)  # type: ignore[attr-defined]
    except UnicodeDecodeError:
        raw: bytes = getattr(msg, "_topic", b"")
        return raw.decode("utf-8", errors="replace")
