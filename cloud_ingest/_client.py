"""The ingester's MQTT client: :class:`mqtt_fastpath.FastClient` (the alerting consumer's too)."""

from __future__ import annotations

from mqtt_fastpath import Delivery, FastClient, puback_frames

IngestClient = FastClient
"""The name the ingester's public API has always exported."""

__all__ = ["Delivery", "IngestClient", "puback_frames"]
