"""paho-mqtt behind a thin adapter: persistent MQTT v5 session, plain or shared subscription,
manual acks.

The network runs in our own thread with a jittered reconnect loop; it is the only thread that
touches paho or the socket. It waits in ``select()`` on the socket and on a wake-up socketpair
(poked once per batch of acks), reads in bursts through :class:`IngestClient`'s buffer, and
sends each batch's PUBACKs with one write. Callbacks never raise: a message is appended to the
inbox (a deque; the broker bounds it, because with manual acks it sends at most Receive Maximum
unacknowledged messages). Each successful connect appends a :data:`RECONNECTED` marker, so the
consumer knows which messages came from which connection: packet ids are only valid on the
connection that delivered them. Broker ``$SYS`` messages (QoS 0, never acknowledged) bypass
the inbox and go to ``on_sys``.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_ingest._client import Delivery, IngestClient
from cloud_ingest._writer import Backoff
from telemetry_core.settings import MqttSettings
from telemetry_core.threads import guarded_thread

log = structlog.get_logger()

RECONNECTED: Final = object()
"""Inbox marker: the messages after it came on a new connection."""

_IDLE_WAIT_S: Final = 0.1
"""Longest ``select()``: bounds how late keep-alive and ``stop()`` are noticed."""
_READ_BURST: Final = 2000
"""Packets handled per burst before acks, writes and keep-alive get a turn."""
_SYS_PREFIX: Final = "$SYS/"

SysHandler = Callable[[str, bytes], None]
"""Takes a broker ``$SYS`` message: ``(topic, payload)``."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter with its QoS and MQTT v5 Retain Handling.

    ``retain_handling`` 1 sends retained messages only when the subscription is new, so a
    reconnect with our persistent session does not replay every retained status; 0 sends them
    on every subscribe (what the ``$SYS`` counters need: their current value at once).
    """

    topic_filter: str
    qos: int = 1
    retain_handling: int = 1

    def options(self) -> SubscribeOptions:
        """paho's subscription options for this subscription."""
        return SubscribeOptions(qos=self.qos, retainHandling=self.retain_handling)


class MqttSource:
    """A persistent-session consumer that acknowledges only when told to.

    ``stale_filters`` are unsubscribed after every connect that finds the session present:
    filters an earlier configuration (another partition, shared mode) left in the session,
    which would otherwise keep delivering districts this instance no longer owns.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        subscriptions: Sequence[Subscription],
        receive_maximum: int,
        session_expiry_s: int,
        backoff: Backoff,
        wake_batch: int,
        on_sys: SysHandler | None = None,
        stale_filters: Sequence[str] = (),
    ) -> None:
        self.inbox: collections.deque[Any] = collections.deque()
        self.wake = threading.Event()
        self.generation = 0
        self.callback_errors = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._settings = settings
        self._subscriptions = list(subscriptions)
        self._stale_filters = list(stale_filters)
        self._on_sys = on_sys
        self._pending_subacks = 0
        self.refused_subscriptions = 0
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._backoff = backoff
        self._wake_batch = wake_batch
        self.stale_acks = 0
        self.dropped_publishes = 0
        # Acks and publishes are handed to the network thread: paho is not safe for two
        # threads writing to its socket, and the network thread can send them in one burst.
        self._outgoing: collections.deque[tuple[int, list[int]] | tuple[str, bytes]]
        self._outgoing = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Another thread pokes the network thread out of select() at most once per poke it
        # has not yet seen: the flag is cleared BEFORE the queue is drained, so an item
        # appended after the drain always finds the flag clear and pokes again.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._poked = False
        self._client = self._make_client(client_id)

    @property
    def client(self) -> IngestClient:
        """The paho client (for counters and tests; only the network thread may drive it)."""
        return self._client

    def _make_client(self, client_id: str) -> IngestClient:
        client = IngestClient(client_id, self._deliver)
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
        client.on_unsubscribe = self._on_unsubscribe
        return client

    def start(self) -> None:
        """Start the network thread; it connects (and reconnects) with jittered backoff."""
        # Guarded: if the network thread dies, the process exits (code 70) for a restart.
        self._thread = guarded_thread(self._run, name="mqtt-network")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, keeping the session (the broker keeps what we did not acknowledge)."""
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._wake_r.close()
        self._wake_w.close()

    def ack_later(self, generation: int, mids: list[int]) -> None:
        """Acknowledge the QoS 1 messages ``mids`` received on connection ``generation``.

        Acks for an older connection are skipped: the broker redelivers those messages and
        their packet ids may already name other messages on the new connection.
        """
        self._outgoing.append((generation, mids))
        self._poke()

    def publish_later(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 from the network thread (dead letters)."""
        self._outgoing.append((topic, payload))
        self._poke()

    def _poke(self) -> None:
        if self._poked:
            return
        self._poked = True
        # Full (a poke is already pending) or closed at stop: either way nothing to do.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _unpoke(self) -> None:
        self._poked = False
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)

    def _flush_outgoing(self) -> None:
        outgoing = self._outgoing
        while outgoing:
            item = outgoing.popleft()
            first, second = item
            if isinstance(first, int):
                self._send_acks(first, second)  # type: ignore[arg-type]
            elif not self._publish(first, second):  # type: ignore[arg-type]
                # paho's queue is full (a burst of rejects): keep this and what follows, in
                # order, until PUBACKs make room, rather than drop dead letters.
                outgoing.appendleft(item)
                return

    def _send_acks(self, generation: int, mids: list[int]) -> None:
        if generation != self.generation:
            self.stale_acks += len(mids)
            return
        self._client.ack_many(mids)  # one write for the whole batch

    def _publish(self, topic: str, payload: bytes) -> bool:
        """Publish a dead letter; False if paho's queue is full (try again later)."""
        info = self._client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return False
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.dropped_publishes += 1
            log.error("deadletter_publish_dropped", topic=topic, rc=str(info.rc))
        return True

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
            self._serve()
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next_delay_s())
        self._disconnect()

    def _serve(self) -> None:
        """Run one connection until it is lost or we stop."""
        client = self._client
        while not self._stop.is_set():
            ready = client.wait(self._wake_r, _IDLE_WAIT_S)
            if ready is None:
                rc = mqtt.MQTT_ERR_NO_CONN
            else:
                if self._wake_r in ready:
                    self._unpoke()
                self._flush_outgoing()
                rc = client.read_burst(_READ_BURST)
            if rc == mqtt.MQTT_ERR_SUCCESS and client.want_write():
                rc = client.loop_write()
            if rc == mqtt.MQTT_ERR_SUCCESS:
                rc = client.loop_misc()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("mqtt_connection_lost", host=self._settings.host,
                            port=self._settings.port, rc=str(rc))  # fmt: skip
                return

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
            log.warning("mqtt_connect_failed", host=self._settings.host,
                        port=self._settings.port, error=str(exc))  # fmt: skip
            return False
        return True

    def _disconnect(self) -> None:
        try:
            self._client.disconnect()  # sends DISCONNECT at once (no loop thread of paho's)
            if self._client.want_write():
                self._client.loop_write()
        except OSError as exc:
            log.info("mqtt_disconnect_failed", error=str(exc))
        self.connected.clear()

    # -- callbacks: they run in the network thread and must never raise --------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        try:
            if reason.is_failure:
                log.error("mqtt_connect_refused", host=self._settings.host,
                          port=self._settings.port, reason=str(reason))  # fmt: skip
                return
            self.generation += 1
            self.inbox.append(RECONNECTED)
            stale = self._stale_filters if flags.session_present else []
            # Subscribed means every SUBACK and the UNSUBACK of the stale filters are in.
            self._pending_subacks = len(self._subscriptions) + (1 if stale else 0)
            for sub in self._subscriptions:
                client.subscribe(sub.topic_filter, options=sub.options())
            if stale:
                client.unsubscribe(stale)
            self._backoff.reset()
            self.connected.set()
            log.info("mqtt_connected", host=self._settings.host, port=self._settings.port,
                     session_present=bool(flags.session_present),
                     generation=self.generation)  # fmt: skip
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_connect_failed")

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        try:
            if any(r.is_failure for r in reasons):
                # Visible, but not fatal: telemetry keeps flowing if only $SYS is refused.
                self.refused_subscriptions += 1
                log.error("mqtt_subscribe_refused", mid=mid, reasons=[str(r) for r in reasons])
            self._pending_subacks -= 1
            if self._pending_subacks <= 0:
                self.subscribed.set()
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_subscribe_failed")

    def _on_unsubscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        try:
            dropped = sum(1 for r in reasons if getattr(r, "value", None) == 0)  # Success
            log.info("mqtt_stale_filters_dropped", held=dropped, checked=len(self._stale_filters))
            self._pending_subacks -= 1
            if self._pending_subacks <= 0:
                self.subscribed.set()
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_unsubscribe_failed")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        log.info("mqtt_disconnected", reason=str(reason))

    def _deliver(self, msgs: list[Delivery] | list[mqtt.MQTTMessage]) -> None:
        inbox = self.inbox
        inbox.extend(msgs)
        # Event.set() takes a lock: only call it when the processor may be asleep.
        if len(inbox) >= self._wake_batch and not self.wake.is_set():
            self.wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Only PUBLISHes off IngestClient's lean path (with properties, QoS 0) come here.
        try:
            if self._on_sys is not None and _is_sys(msg):
                self._on_sys(msg.topic, bytes(msg.payload))
                return
            self._deliver([msg])
        except Exception:  # noqa: BLE001 - a callback must never raise into paho
            self.callback_errors += 1


def _is_sys(msg: mqtt.MQTTMessage) -> bool:
    """Whether ``msg`` is a broker ``$SYS`` message; a non-UTF-8 topic is not (the pipeline
    refuses it with a reason, so it must reach the inbox)."""
    try:
        return msg.topic.startswith(_SYS_PREFIX)
    except UnicodeDecodeError:
        return False
