"""A bystander on the broker: every telemetry message that crossed it, for checks and the demo."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry_core.errors import RejectedMessage
from telemetry_core.schema import Telemetry, decode
from telemetry_core.topics import Channel, Topic, parse_topic, subscription


class TelemetryWatch:
    """Subscribes to all telemetry and keeps each valid message by ``(device_id, ts)``.

    A message redelivered or replayed has the same key, so ``count()`` is the number of
    distinct readings published: what the database must end up holding.
    """

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.messages: dict[tuple[str, int], tuple[Topic, Telemetry]] = {}
        self.invalid = 0
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect(host, port)
        self._client.subscribe(subscription(Channel.TELEMETRY), qos=1)
        self._client.loop_start()
        if not subscribed.wait(timeout_s):
            self.close()
            raise TimeoutError(f"no SUBACK from {host}:{port} in {timeout_s} s")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic, telemetry = parse_topic(msg.topic), decode(msg.payload, Telemetry)
        except RejectedMessage:
            with self._lock:
                self.invalid += 1
            return
        with self._lock:
            self.messages[(telemetry.device_id, telemetry.ts)] = (topic, telemetry)

    def count(self) -> int:
        """Distinct readings seen so far."""
        with self._lock:
            return len(self.messages)

    def snapshot(self) -> dict[tuple[str, int], tuple[Topic, Telemetry]]:
        """A copy of what was seen so far."""
        with self._lock:
            return dict(self.messages)

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()
