"""Bystanders on the broker: every telemetry message that crossed it, and the alerting
service's output (transitions, incidents, stats), for checks and the demo."""

from __future__ import annotations

import threading
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry_core.alerting_wire import ALERTING_STATS_FILTER, AlertingStats
from telemetry_core.errors import RejectedMessage
from telemetry_core.schema import AlertTransition, Incident, Telemetry, decode
from telemetry_core.topics import (
    ALERT_PREFIX,
    INCIDENT_PREFIX,
    Channel,
    Topic,
    alert_subscription,
    incident_subscription,
    parse_topic,
    subscription,
)


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


_STATS = msgspec.json.Decoder(AlertingStats)


class AlertWatch:
    """Subscribes to the alerting service's output: transitions, incidents and its stats.

    Transitions are kept by ``transition_id`` (a redelivered one is the same), incidents by id
    (the latest message of each), stats by instance (the latest), for the demo's live view and
    to check against what the ingester stored.
    """

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.transitions: dict[str, AlertTransition] = {}
        self.incidents: dict[str, Incident] = {}
        self.stats: dict[str, AlertingStats] = {}
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect(host, port)
        filters = (alert_subscription(), incident_subscription(), ALERTING_STATS_FILTER)
        self._client.subscribe([(f, 1) for f in filters])  # one SUBACK for the three
        self._client.loop_start()
        if not subscribed.wait(timeout_s):
            self.close()
            raise TimeoutError(f"no SUBACK from {host}:{port} in {timeout_s} s")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic.startswith(ALERT_PREFIX + "/"):
                transition = decode(msg.payload, AlertTransition)
                with self._lock:
                    self.transitions[transition.transition_id] = transition
            elif msg.topic.startswith(INCIDENT_PREFIX + "/"):
                incident = decode(msg.payload, Incident)
                with self._lock:
                    self.incidents[incident.id] = incident
            else:
                stats = _STATS.decode(msg.payload)
                with self._lock:
                    self.stats[stats.instance] = stats
        except (RejectedMessage, msgspec.ValidationError, msgspec.DecodeError):
            return  # not ours to judge: the ingester dead-letters what it cannot store

    def snapshot(self) -> tuple[list[AlertTransition], list[Incident], list[AlertingStats]]:
        """Copies of the distinct transitions, the incidents and the latest stats seen."""
        with self._lock:
            return (list(self.transitions.values()), list(self.incidents.values()),
                    list(self.stats.values()))  # fmt: skip

    def close(self) -> None:
        """Disconnect."""
        self._client.loop_stop()
        self._client.disconnect()
