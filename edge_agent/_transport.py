"""The MQTT port of the agent, and paho-mqtt behind a thin adapter.

paho's callbacks run on its network thread; they never raise and never touch the spool: they
turn what happened into a small event on a queue that the agent's own thread drains. That is
also what makes the mid -> row bookkeeping race-free: a PUBACK that beats ``publish()``'s
return is only looked at after the agent has recorded the mid.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent._diagnosis import STABLE_S, Finding, LinkDiagnosis
from edge_agent._pacing import Backoff
from edge_agent.errors import TransportError
from telemetry_core.threads import guarded_thread

log = structlog.get_logger()

_KEPT_BY_PAHO = frozenset(
    {
        MQTTErrorCode.MQTT_ERR_SUCCESS,
        MQTTErrorCode.MQTT_ERR_NO_CONN,
        MQTTErrorCode.MQTT_ERR_CONN_LOST,
    }
)


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted our CONNECT."""

    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is gone (or a connection attempt failed)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Published:
    """The broker answered a QoS 1 PUBLISH; ``ok`` is False when its reason code is a refusal."""

    mid: int
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived on a subscribed topic."""

    topic: str
    payload: bytes


class SecretValue(Protocol):
    """A secret that reveals itself only on request (``SecretStr``, :class:`Secret`)."""

    def get_secret_value(self) -> str:
        """The secret."""
        ...


class MqttLink(Protocol):
    """How to reach the broker: ``MqttSection``, or ``telemetry_core.settings.MqttSettings``."""

    @property
    def host(self) -> str:
        """Broker host."""
        ...

    @property
    def port(self) -> int:
        """Broker port."""
        ...

    @property
    def username(self) -> str | None:
        """User name, or None for anonymous."""
        ...

    @property
    def password(self) -> SecretValue | None:
        """Password."""
        ...

    @property
    def keepalive_s(self) -> int:
        """MQTT keep-alive."""
        ...

    @property
    def use_tls(self) -> bool:
        """Whether to speak TLS."""
        ...

    @property
    def ca_file(self) -> Path | None:
        """A private CA's certificate (PEM) to trust; None trusts the system's CAs."""
        ...


TransportEvent = Connected | Disconnected | Published | Received
WillFactory = Callable[[], tuple[str, bytes]]


class Transport(Protocol):
    """What the agent needs from MQTT. Events are delivered through :meth:`events`."""

    def start(self) -> None:
        """Begin connecting in the background, and keep reconnecting until :meth:`stop`."""
        ...

    def stop(self, timeout_s: float) -> None:
        """Disconnect cleanly (the broker does not send the will) and stop reconnecting."""
        ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Queue a QoS 1 message; its mid (the PUBACK arrives later as :class:`Published`)."""
        ...

    def subscribe(self, topics: Sequence[str]) -> None:
        """Subscribe at QoS 1 now and after every reconnect."""
        ...

    def events(self, timeout_s: float) -> list[TransportEvent]:
        """Wait up to ``timeout_s`` for at least one event; all events that are ready."""
        ...

    def wake(self) -> None:
        """Make a waiting :meth:`events` return now; safe to call from a signal handler."""
        ...


class PahoTransport:
    """paho-mqtt 2.x, MQTT v5, persistent session, our own jittered reconnect loop."""

    def __init__(
        self,
        settings: MqttLink,
        client_id: str,
        will: WillFactory,
        *,
        session_expiry_s: int = 7 * 86_400,
        max_inflight: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._will = will
        self._session_expiry_s = session_expiry_s
        self._backoff = backoff or Backoff()
        # None on the queue only ends a wait (see wake); events() drops it.
        self._queue: queue.SimpleQueue[TransportEvent | None] = queue.SimpleQueue()
        self._topics: list[str] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._diagnosis = LinkDiagnosis()
        self._refused = False  # the current attempt's CONNACK was a refusal
        self._lost_reason = ""
        self._client = self._make_client(max_inflight)

    def _make_client(self, max_inflight: int) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=paho.MQTTv5
        )
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        if self._settings.username is not None:
            password = self._settings.password
            client.username_pw_set(
                self._settings.username, password.get_secret_value() if password else None
            )
        if self._settings.use_tls:
            self._set_tls(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _set_tls(self, client: paho.Client) -> None:
        ca_file = self._settings.ca_file
        if ca_file is not None and not ca_file.is_file():
            raise TransportError(f"mqtt.ca_file {ca_file}: no such file")
        try:
            client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise TransportError(f"cannot set up TLS: {exc}") from exc

    # -- the port --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread."""
        if self._thread is not None:
            raise TransportError("transport already started")
        # Guarded: if the network thread dies, the process exits (code 70) for a restart.
        self._thread = guarded_thread(self._run, name=f"mqtt-{self._client_id}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send DISCONNECT (no will) and join the network thread."""
        self._stopping.set()
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """QoS 1 publish; paho keeps it and resends it after a reconnect until PUBACKed."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        # NO_CONN and CONN_LOST (the link dropped under us) leave the message in paho's session
        # store: it is sent again after the reconnect, so neither is an error here.
        if info.rc not in _KEPT_BY_PAHO:
            raise TransportError(
                f"publish to {topic} refused locally: {paho.error_string(info.rc)}"
            )
        return int(info.mid)

    def subscribe(self, topics: Sequence[str]) -> None:
        """Remember ``topics`` and subscribe now if connected."""
        self._topics = list(dict.fromkeys([*self._topics, *topics]))
        if self._client.is_connected():
            self._client.subscribe([(t, 1) for t in topics])

    def events(self, timeout_s: float) -> list[TransportEvent]:
        """Drain the event queue, blocking up to ``timeout_s`` for the first event."""
        try:
            first = self._queue.get(timeout=max(0.0, timeout_s)) if timeout_s > 0 else None
        except queue.Empty:
            return []
        out: list[TransportEvent | None] = [first]
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return [e for e in out if e is not None]

    def wake(self) -> None:
        """Unblock :meth:`events`. SimpleQueue.put is reentrant, so a signal handler may call it.

        It must: in CPython 3.11, a signal that interrupts a timed ``SimpleQueue.get`` after its
        deadline has passed leaves the get waiting with no deadline, until the next put.
        """
        self._queue.put(None)

    # -- network thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._connect_once():
                began_s = time.monotonic()
                self._loop_until_lost()
                # Only a connection that lasted resets the back-off: a broker that accepts and
                # then drops us at once (a duplicate client id, an ACL) must not be hammered.
                lasted_s = time.monotonic() - began_s
                if lasted_s >= STABLE_S:
                    self._backoff.reset()
                if not self._stopping.is_set() and not self._refused:
                    reason = self._lost_reason or "connection lost"
                    self._say(self._diagnosis.lost(lasted_s, reason, time.monotonic()))
            if not self._stopping.is_set():
                delay_s = self._backoff.next_delay_s()
                log.info("mqtt_retry", client_id=self._client_id, retry_in_s=round(delay_s, 2))
                self._stopping.wait(delay_s)

    def _say(self, finding: Finding | None) -> None:
        if finding is not None:
            getattr(log, finding.level)(
                finding.event, client_id=self._client_id, host=self._settings.host,
                port=self._settings.port, **finding.fields,
            )  # fmt: skip

    def _connect_once(self) -> bool:
        self._refused, self._lost_reason = False, ""
        topic, payload = self._will()
        self._client.will_set(topic, payload, qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        try:
            self._client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except ssl.SSLCertVerificationError as exc:
            # Not transient like a refused connection: say what to fix (we keep retrying, as the
            # broker's certificate or our CA file may be replaced while we run).
            log.error(  # noqa: TRY400 - the verify message says it all; a traceback would not
                "mqtt_tls_verify_failed",
                host=self._settings.host,
                port=self._settings.port,
                error=exc.verify_message,
                ca_file=str(self._settings.ca_file or "system CAs"),
                hint="the broker's certificate is not signed by this CA or names another host",
            )
            self._queue.put(Disconnected(f"TLS verification failed: {exc.verify_message}"))
            return False
        except (OSError, ValueError) as exc:
            self._diagnosis.unreachable()
            log.warning(
                "mqtt_connect_failed",
                host=self._settings.host,
                port=self._settings.port,
                error=str(exc),
            )
            self._queue.put(Disconnected(f"connect failed: {exc}"))
            return False
        return True

    def _loop_until_lost(self) -> None:
        while not self._stopping.is_set():
            rc = self._client.loop(timeout=0.5)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
        # Flush the DISCONNECT queued by stop().
        self._client.loop(timeout=0.2)

    # -- paho callbacks: never raise, only enqueue ------------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = True
            self._say(self._diagnosis.refused(str(reason)))
            return
        self._say(self._diagnosis.connected(time.monotonic()))
        if self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        self._queue.put(Connected(bool(flags.session_present)))

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("mqtt_subscribe_refused", client_id=self._client_id, reasons=refused,
                      hint="the broker's ACL does not let this user read our command topics; "
                      "commands will not arrive")  # fmt: skip

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._lost_reason = str(reason)
        self._queue.put(Disconnected(str(reason)))

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._diagnosis.publish_refused(str(reason))
        self._queue.put(Published(mid, not reason.is_failure, str(reason)))

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._queue.put(Received(msg.topic, bytes(msg.payload)))
