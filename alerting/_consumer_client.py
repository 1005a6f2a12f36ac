"""The alerting consumer's MQTT client: :class:`mqtt_fastpath.FastClient` (the ingester's too)."""

from __future__ import annotations

from mqtt_fastpath import Delivery, FastClient, puback_frames

ConsumerClient = FastClient
"""The consumer's name for the shared lean client."""

__all__ = ["ConsumerClient", "Delivery", "puback_frames"]
