"""paho-mqtt behind a thin adapter: a persistent MQTT v5 session, manual acks, tracked publishes.

As in the ingester, one network thread owns paho and the socket: it waits in ``select()`` on
the socket and on a wake-up socketpair, reads in bursts through :class:`ConsumerClient`'s buffer,
and sends what other threads queued (acks, publishes) from its own thread. Callbacks never
raise. Each successful connect appends :data:`RECONNECTED` to the inbox: packet ids are only
valid on the connection that delivered them.

Unlike the ingester, this consumer also *publishes* what it must not lose (alert transitions),
so every publish carries a sequence number given by the caller, in order, and
:meth:`MqttConsumer.confirmed_below` says whether every publish before a number has been
acknowledged by the broker (PUBACK). paho keeps unacknowledged QoS 1 publishes and sends them
again after a reconnect; its queue is unbounded here and the caller bounds it instead
(:attr:`MqttConsumer.unconfirmed`), so no transition is ever dropped by the client.
"""

from __future__ import annotations

import collections
import contextlib
import random
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from alerting._consumer_client import ConsumerClient, Delivery
from telemetry_core.settings import MqttSettings
from telemetry_core.threads import guarded_thread

log = structlog.get_logger()

RECONNECTED: Final = object()
"""Inbox marker: the messages after it came on a new connection."""

_IDLE_WAIT_S: Final = 0.1
_READ_BURST: Final = 2000


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter at QoS 1; retained messages only when the subscription is new."""

    topic_filter: str
    qos: int = 1
    retain_handling: int = 1

    def options(self) -> SubscribeOptions:
        """paho's subscription options for this subscription."""
        return SubscribeOptions(qos=self.qos, retainHandling=self.retain_handling)


class Backoff:
    """Exponential backoff with full jitter: a uniform delay in ``[min, min * 2**attempt]``."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self._min_s, self._max_s = min_s, max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay_s(self) -> float:
        """The next delay; each call doubles the ceiling up to ``max_s``."""
        ceiling = min(self._max_s, self._min_s * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return self._rng.uniform(self._min_s, ceiling)

    def reset(self) -> None:
        """Start from the shortest delay again."""
        self._attempt = 0


class PublishLedger:
    """Which tracked publishes the broker has acknowledged; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handed = 0
        """Publishes handed to paho so far; they were numbered 0, 1, ... in this order."""
        self._outstanding: dict[int, int] = {}
        """paho mid -> our sequence number, for publishes not yet acknowledged."""
        self.confirmed = threading.Event()

    def handed(self, mid: int) -> int:
        """Record that publish number ``handed`` went to paho as ``mid``; return its number."""
        with self._lock:
            seq = self._handed
            self._handed += 1
            self._outstanding[mid] = seq
            return seq

    def acknowledged(self, mid: int) -> None:
        """The broker acknowledged ``mid``."""
        with self._lock:
            self._outstanding.pop(mid, None)
        self.confirmed.set()

    def confirmed_below(self, seq: int) -> bool:
        """True once every publish numbered below ``seq`` was handed and acknowledged."""
        with self._lock:
            if self._handed < seq:
                return False
            return all(s >= seq for s in self._outstanding.values())

    @property
    def unconfirmed(self) -> int:
        """Publishes handed to paho and not yet acknowledged."""
        return len(self._outstanding)


class MqttConsumer:
    """A persistent consumer that acknowledges only when told to and tracks its publishes."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        subscriptions: Sequence[Subscription],
        receive_maximum: int,
        session_expiry_s: int,
        backoff: Backoff,
        wake_batch: int = 1,
        stale_filters: Sequence[str] = (),
    ) -> None:
        self.inbox: collections.deque[Any] = collections.deque()
        self.wake = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.ledger = PublishLedger()
        self.generation = 0
        self.callback_errors = 0
        self.stale_acks = 0
        self.refused_subscriptions = 0
        self._settings = settings
        self._subscriptions = list(subscriptions)
        self._stale_filters = list(stale_filters)
        self._pending_subacks = 0
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._backoff = backoff
        self._wake_batch = wake_batch
        self._outgoing: collections.deque[tuple[int, list[int]] | tuple[str, bytes]]
        self._outgoing = collections.deque()
        self._queued_publishes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._poked = False
        self._client = self._make_client(client_id)

    @property
    def client(self) -> ConsumerClient:
        """The paho client (for counters and tests; only the network thread may drive it)."""
        return self._client

    @property
    def thread(self) -> threading.Thread | None:
        """The network thread, once started."""
        return self._thread

    def _make_client(self, client_id: str) -> ConsumerClient:
        client = ConsumerClient(client_id, self._deliver)
        if self._settings.username:
            password = self._settings.password
            client.username_pw_set(
                self._settings.username, password.get_secret_value() if password else None
            )
        if self._settings.use_tls:
            ca = str(self._settings.ca_file) if self._settings.ca_file else None
            client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.max_queued_messages_set(0)  # unbounded: the service bounds what it publishes
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_unsubscribe = self._on_unsubscribe
        return client

    def start(self) -> None:
        """Start the network thread; it connects (and reconnects) with jittered backoff."""
        self._thread = guarded_thread(self._run, name="alerting-mqtt")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, keeping the session (the broker keeps what we did not acknowledge)."""
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._wake_r.close()
        self._wake_w.close()

    def ack_later(self, generation: int, mids: list[int]) -> None:
        """Acknowledge ``mids`` of connection ``generation``; acks of an older one are skipped."""
        self._outgoing.append((generation, mids))
        self._poke()

    def publish_later(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 from the network thread; publishes are numbered in call order."""
        self._queued_publishes += 1
        self._outgoing.append((topic, payload))
        self._poke()

    @property
    def publishes_queued(self) -> int:
        """How many publishes were asked for so far: the number the next one will get."""
        return self._queued_publishes

    def _poke(self) -> None:
        if self._poked:
            return
        self._poked = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _unpoke(self) -> None:
        self._poked = False
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)

    def _flush_outgoing(self) -> None:
        outgoing = self._outgoing
        while outgoing:
            first, second = outgoing.popleft()
            if isinstance(first, int):
                self._send_acks(first, second)  # type: ignore[arg-type]
            else:
                info = self._client.publish(first, second, qos=1)  # type: ignore[arg-type]
                self.ledger.handed(info.mid)

    def _send_acks(self, generation: int, mids: list[int]) -> None:
        if generation != self.generation:
            self.stale_acks += len(mids)
            return
        self._client.ack_many(mids)

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        return props

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._connect_once():
                self._serve()
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next_delay_s())
        self._disconnect()

    def _serve(self) -> None:
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
                log.warning("mqtt_connection_lost", rc=str(rc))
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
            log.warning("mqtt_connect_failed", host=self._settings.host, error=str(exc))
            return False
        return True

    def _disconnect(self) -> None:
        try:
            self._flush_outgoing()  # the last acks of a clean stop
            self._client.disconnect()
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
                log.error("mqtt_connect_refused", reason=str(reason))
                return
            self.generation += 1
            self.inbox.append(RECONNECTED)
            _no_delay(client)
            # A session kept from another partition still holds its filters: drop them, or
            # this instance would go on receiving (and alerting on) districts not its own.
            stale = self._stale_filters if flags.session_present else []
            self._pending_subacks = len(self._subscriptions) + (1 if stale else 0)
            for sub in self._subscriptions:
                client.subscribe(sub.topic_filter, options=sub.options())
            if stale:
                client.unsubscribe(stale)
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
                self.refused_subscriptions += 1
                log.error("mqtt_subscribe_refused", mid=mid, reasons=[str(r) for r in reasons])
            self._answered()
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_subscribe_failed")

    def _answered(self) -> None:
        """One SUBACK or UNSUBACK is in; subscribed once the last of them is."""
        self._pending_subacks -= 1
        if self._pending_subacks <= 0:
            self.subscribed.set()
            log.info("mqtt_subscribed", filters=len(self._subscriptions))

    def _on_unsubscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        try:
            dropped = sum(1 for r in reasons if getattr(r, "value", None) == 0)  # Success
            log.info("mqtt_stale_filters_dropped", held=dropped, checked=len(self._stale_filters))
            self._answered()
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_unsubscribe_failed")

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        try:
            self.ledger.acknowledged(mid)
        except Exception:
            self.callback_errors += 1
            log.exception("mqtt_on_publish_failed")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        log.info("mqtt_disconnected", reason=str(reason))

    def _deliver(self, msgs: list[Delivery] | list[mqtt.MQTTMessage]) -> None:
        inbox = self.inbox
        inbox.extend(msgs)
        if len(inbox) >= self._wake_batch and not self.wake.is_set():
            self.wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._deliver([msg])
        except Exception:  # noqa: BLE001 - a callback must never raise into paho
            self.callback_errors += 1


def _no_delay(client: mqtt.Client) -> None:
    """Turn Nagle's algorithm off: paho leaves it on, and a transition published right after a
    batch of PUBACKs would wait for the broker's delayed ACK (about 40 ms on Linux)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
