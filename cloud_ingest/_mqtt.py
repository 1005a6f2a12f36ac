"""paho-mqtt behind a thin adapter: persistent MQTT v5 session, shared subscription, manual acks.

The network runs in our own thread with a jittered reconnect loop. Callbacks never raise: a
message is appended to the inbox (a deque; the broker bounds it, because with manual acks it
sends at most Receive Maximum unacknowledged messages). Each successful connect appends a
:data:`RECONNECTED` marker, so the consumer knows which messages came from which connection:
packet ids are only valid on the connection that delivered them.
"""

from __future__ import annotations

import collections
import ssl
import threading
from typing import Any, Final

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_ingest._writer import Backoff
from telemetry_core.settings import MqttSettings

log = structlog.get_logger()

RECONNECTED: Final = object()
"""Inbox marker: the messages after it came on a new connection."""


class MqttSource:
    """A persistent, shared-subscription consumer that acknowledges only when told to."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        subscriptions: list[str],
        receive_maximum: int,
        session_expiry_s: int,
        backoff: Backoff,
        wake_batch: int,
    ) -> None:
        self.inbox: collections.deque[Any] = collections.deque()
        self.wake = threading.Event()
        self.generation = 0
        self.callback_errors = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._settings = settings
        self._subscriptions = subscriptions
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._backoff = backoff
        self._wake_batch = wake_batch
        self.stale_acks = 0
        self.dropped_publishes = 0
        # Acks and publishes are handed to the network thread: paho is not safe for two
        # threads writing to its socket, and the network thread can send them in one burst.
        self._outgoing: collections.deque[tuple[int, list[tuple[int, int]]] | tuple[str, bytes]]
        self._outgoing = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = self._make_client(client_id)

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if self._settings.username:
            password = self._settings.password
            client.username_pw_set(
                self._settings.username, password.get_secret_value() if password else None
            )
        if self._settings.use_tls:
            ca = str(self._settings.ca_file) if self._settings.ca_file else None
            client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # Dead letters wait here while the broker is away; bounded so an outage cannot eat memory.
        client.max_queued_messages_set(10_000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Start the network thread; it connects (and reconnects) with jittered backoff."""
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, keeping the session (the broker keeps what we did not acknowledge)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def ack_later(self, generation: int, acks: list[tuple[int, int]]) -> None:
        """Acknowledge ``(mid, qos)`` pairs received on connection ``generation``.

        Acks for an older connection are skipped: the broker redelivers those messages and
        their packet ids may already name other messages on the new connection.
        """
        self._outgoing.append((generation, acks))

    def publish_later(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 from the network thread (dead letters)."""
        self._outgoing.append((topic, payload))

    def _flush_outgoing(self) -> None:
        outgoing = self._outgoing
        while outgoing:
            first, second = outgoing.popleft()
            if isinstance(first, int):
                self._send_acks(first, second)  # type: ignore[arg-type]
            else:
                self._publish(first, second)  # type: ignore[arg-type]

    def _send_acks(self, generation: int, acks: list[tuple[int, int]]) -> None:
        if generation != self.generation:
            self.stale_acks += len(acks)
            return
        ack = self._client.ack
        for mid, qos in acks:
            ack(mid, qos)

    def _publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.dropped_publishes += 1
            log.error("deadletter_publish_dropped", topic=topic, rc=str(info.rc))

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        return props

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._connect_once():
                self._stop.wait(self._backoff.next_delay_s())
                continue
            while not self._stop.is_set():
                self._flush_outgoing()
                rc = self._client.loop(timeout=0.01)
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    # loop() reads one packet per select(); drain what is already buffered.
                    rc = self._client.loop_read(max_packets=self._wake_batch)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    log.warning("mqtt_connection_lost", rc=str(rc))
                    break
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next_delay_s())
        self._disconnect()

    def _connect_once(self) -> bool:
        try:
            self._client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=False,
                properties=self._connect_properties(),
            )
        except OSError as exc:
            log.warning("mqtt_connect_failed", host=self._settings.host, error=str(exc))
            return False
        return True

    def _disconnect(self) -> None:
        try:
            self._client.disconnect()
            self._client.loop(timeout=0.1)
        except OSError as exc:
            log.info("mqtt_disconnect_failed", error=str(exc))
        self.connected.clear()

    # -- callbacks: they run in the network thread and must never raise --------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        try:
            if reason.is_failure:
                log.error("mqtt_connect_refused", reason=str(reason))
                return
            self.generation += 1
            self.inbox.append(RECONNECTED)
            for flt in self._subscriptions:
                client.subscribe(flt, qos=1)
            self._backoff.reset()
            self.connected.set()
            log.info("mqtt_connected", session_present=bool(flags.session_present),
                     generation=self.generation)  # fmt: skip
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_connect_failed")

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        try:
            if any(r.is_failure for r in reasons):
                log.error("mqtt_subscribe_refused", mid=mid, reasons=[str(r) for r in reasons])
                return
            self.subscribed.set()
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_subscribe_failed")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        log.info("mqtt_disconnected", reason=str(reason))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            inbox = self.inbox
            inbox.append(msg)
            if len(inbox) >= self._wake_batch:
                self.wake.set()
        except Exception:  # noqa: BLE001 - a callback must never raise into paho
            self.callback_errors += 1
