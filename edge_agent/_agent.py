"""The agent loop: devices -> spool -> MQTT, acknowledgements -> spool deletes, commands -> devices.

Every message is committed to the spool before it is handed to MQTT and deleted only when its
PUBACK arrives, so a crash at any instant loses nothing: what was not acknowledged is sent again
after the restart (a duplicate at worst, with the same device, boot, seq and ts).

*Live* messages (made while connected) go out at once, threshold events included. Messages that
were waiting in the spool when a connection came up are *historical*: they are replayed oldest
first, marked ``historical: true``, through a token bucket, so a district coming back after an
outage does not flood the broker, while live readings still flow.

A device's own link counts too: when its driver (a :class:`telemetry_core.driver.LinkProbe`)
says the link is down, the device keeps sampling but its messages stay in the spool, and its
retained status says ``offline`` (as its last will would); when the link is back, its birth is
published and its backlog replayed the same way, for that device alone (see ``_replay``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import msgspec
import structlog

from edge_agent._device import CommandOutcome, DeviceRuntime, Outgoing
from edge_agent._replay import IDLE_WAIT_S, Replay, ReplayPolicy
from edge_agent._spool import NewRow, Spool, SpoolRow
from edge_agent._transport import (
    Connected,
    Disconnected,
    Published,
    Received,
    Transport,
    TransportEvent,
)
from telemetry_core.clock import Clock
from telemetry_core.errors import RejectedMessage
from telemetry_core.schema import Event, Telemetry, encode
from telemetry_core.threads import stop_deadline
from telemetry_core.topics import Channel, parse_topic

log = structlog.get_logger()

LINK_DOWN_REASON = "link_down"
"""``reason`` of the ``offline`` status published for a device whose own link is down."""

GatewayStatus = Callable[[str, str], tuple[str, bytes]]
"""``(state, reason) -> (topic, payload)`` of a gateway's own retained status."""


class EdgeAgent:
    """Runs one or many devices over one MQTT transport and one spool (single owner thread)."""

    def __init__(
        self,
        devices: Sequence[DeviceRuntime],
        transport: Transport,
        spool: Spool,
        clock: Clock,
        *,
        policy: ReplayPolicy | None = None,
        gateway: GatewayStatus | None = None,
        speed: float = 1.0,
    ) -> None:
        if not devices:
            raise ValueError("an agent needs at least one device")
        self._devices = {d.device_id: d for d in devices}
        self._transport = transport
        self._spool = spool
        self._clock = clock
        self._policy = policy or ReplayPolicy()
        self._gateway = gateway
        # Waits are computed in the clock's seconds; an accelerated clock needs shorter real waits.
        # The replay bucket counts wall-clock seconds: the broker's load is real, whatever the
        # simulation speed (``clock`` runs ``speed`` times faster than the machine's clock).
        self._speed = speed
        self._replay = Replay(self._policy, self._wall_s())
        self._connected = False
        self._inflight: dict[int, int] = {}  # mid -> spool row id
        self._submitted: set[int] = set()  # row ids paho holds (it resends them after reconnects)
        self._down: set[str] = set()  # devices whose own link is down (their rows stay put)
        self._status_mids: set[int] = set()
        self.sent_live = 0
        self.sent_historical = 0

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the current connection."""
        return self._connected

    @property
    def backlog(self) -> int:
        """Messages in the spool, sent or not, awaiting a PUBACK."""
        return len(self._spool)

    @property
    def links_down(self) -> frozenset[str]:
        """Devices whose own link (per their driver's link probe) is down now."""
        return frozenset(self._down)

    @property
    def devices(self) -> Sequence[DeviceRuntime]:
        """The hosted devices."""
        return list(self._devices.values())

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to every device's command topic and start connecting."""
        self._transport.subscribe(
            [str(d.topic.sibling(Channel.CMD)) for d in self._devices.values()]
        )
        self._transport.start()
        log.info("edge_started", devices=len(self._devices), backlog=len(self._spool))

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set, then shut down cleanly, in ``STOP_DEADLINE_S`` at most
        (past that the process ends, every thread's stack on stderr)."""
        self.start()
        wait_s = 0.0
        while not stop.is_set():
            wait_s = self.turn(wait_s)
        log.info("edge_stopping", devices=len(self._devices), backlog=len(self._spool))
        with stop_deadline("edge"):
            self.shutdown()

    def wake(self) -> None:
        """End the current wait for MQTT events at once (from a signal handler, say)."""
        self._transport.wake()

    def turn(self, wait_s: float) -> float:
        """Wait up to ``wait_s`` (clock seconds) for MQTT events, then :meth:`step`."""
        return self.step(self._transport.events(wait_s / self._speed))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Publish ``offline`` for every device, wait briefly for acks, disconnect, close spool."""
        if self._connected:
            for device in self._devices.values():
                self._publish_status(device, "offline", "shutdown")
            self._publish_gateway_status("offline", "shutdown")
            # Wall seconds: on a sped-up clock, 5 clock seconds were over before the broker
            # could answer, and the disconnect dropped offline statuses still in flight.
            deadline = self._wall_s() + timeout_s
            while self._status_mids and self._wall_s() < deadline:
                self.step(self._transport.events(0.1), sample=False)
        unconfirmed = len(self._status_mids)
        self._transport.stop(timeout_s)
        self._spool.close()
        log.info("edge_stopped", backlog=len(self._spool), statuses_unconfirmed=unconfirmed)

    # -- one turn of the loop ----------------------------------------------------------------

    def step(self, events: Sequence[TransportEvent], *, sample: bool = True) -> float:
        """Handle ``events``, sample due devices, send what may be sent; seconds until more work."""
        acked: list[int] = []
        outgoing: list[Outgoing] = []
        for event in events:
            outgoing.extend(self._handle(event, acked))
        self._spool.delete(acked)
        if sample:
            outgoing.extend(self._sample_due())
        self._store_and_send(outgoing)
        replay_wait_s = self._pump_replay()
        return min(self._until_next_sample_s(), replay_wait_s)

    def _handle(self, event: TransportEvent, acked: list[int]) -> list[Outgoing]:
        if isinstance(event, Published):
            self._on_published(event, acked)
            return []
        if isinstance(event, Received):
            return self._on_command(event)
        if isinstance(event, Connected):
            self._on_connected(event)
            return []
        self._on_disconnected(event)
        return []

    def _on_connected(self, event: Connected) -> None:
        self._connected = True
        ceiling = self._spool.max_id()
        self._replay.restart_all(ceiling)
        log.info("mqtt_connected", session_present=event.session_present, backlog=len(self._spool))
        self._publish_gateway_status("online", "")
        for device in self._devices.values():
            if device.device_id in self._down:
                self._publish_status(device, "offline", LINK_DOWN_REASON)
            else:
                self._publish_status(device, "online")
        ids = self._spool.take_drops(self._drop_report_row, self._clock.now_s(), self._submitted)
        if ids:
            self._send_live(self._spool.between(ceiling, max(ids), len(ids)))

    def _on_disconnected(self, event: Disconnected) -> None:
        if self._connected:
            log.warning("mqtt_disconnected", reason=event.reason, backlog=len(self._spool))
        self._connected = False

    def _on_published(self, event: Published, acked: list[int]) -> None:
        self._status_mids.discard(event.mid)
        row_id = self._inflight.pop(event.mid, None)
        if row_id is None:
            return
        self._submitted.discard(row_id)
        if not event.ok:
            # A refusal is permanent (ACL, quota): retrying would block the queue forever.
            self._record_refused(row_id, event.reason)
        acked.append(row_id)

    def _record_refused(self, row_id: int, reason: str) -> None:
        rows = self._spool.between(row_id - 1, row_id, 1)
        device_id, topic = (rows[0].device_id, rows[0].topic) if rows else ("unknown", "")
        log.error(
            "publish_refused",
            device_id=device_id,
            topic=topic,
            reason=reason,
            hint="the broker refused this message (MQTT v5 PUBACK); if 'Not authorized', "
            "the ACL does not let this MQTT user write this topic: check mqtt.username",
        )
        self._spool.record_refused(device_id)

    def _on_command(self, event: Received) -> list[Outgoing]:
        try:
            device = self._devices.get(parse_topic(event.topic).device_id)
        except RejectedMessage:
            device = None
        if device is None:
            log.warning("command_for_unknown_device", topic=event.topic)
            return []
        outcome = device.handle_command(event.payload)
        self._after_command(device, outcome)
        return outcome.outgoing

    def _after_command(self, device: DeviceRuntime, outcome: CommandOutcome) -> None:
        if outcome.restart:
            log.info("device_restart", device_id=device.device_id)
            device.reboot()
        if outcome.restart or outcome.publish_status:
            self._publish_status(device, "online")

    def _sample_due(self) -> list[Outgoing]:
        now_s = self._clock.monotonic_s()
        out: list[Outgoing] = []
        horizon_s = now_s + self._policy.coalesce_s
        for device in self._devices.values():
            if device.next_due_s <= horizon_s:
                changed = device.check_link()
                if changed is not None:
                    self._on_link_changed(device, up=changed)
                out.extend(device.sample())
                interval_s = device.config.config.interval_s
                # Keep the cadence, but never burst to catch up after a stall.
                device.next_due_s = max(device.next_due_s + interval_s, now_s + interval_s / 2)
        return out

    def _on_link_changed(self, device: DeviceRuntime, *, up: bool) -> None:
        device_id = device.device_id
        if up:
            self._down.discard(device_id)
            # Everything stored so far is its backlog; what it samples from now on goes live.
            self._replay.restart_device(device_id, self._spool.max_id())
            log.info("device_link_up", device_id=device_id)
        else:
            self._down.add(device_id)
            self._replay.forget_device(device_id)
            log.warning("device_link_down", device_id=device_id)
        if self._connected:
            self._publish_status(device, *(("online", "") if up else ("offline", LINK_DOWN_REASON)))

    def _until_next_sample_s(self) -> float:
        earliest = min(d.next_due_s for d in self._devices.values())
        return max(0.0, min(IDLE_WAIT_S, earliest - self._clock.monotonic_s()))

    # -- sending -------------------------------------------------------------------------------

    def _store_and_send(self, outgoing: Sequence[Outgoing]) -> None:
        if not outgoing:
            return
        now_s = self._clock.now_s()
        rows = [
            NewRow(o.device_id, o.channel.value, o.topic, o.priority, now_s, encode(o.message))
            for o in outgoing
        ]
        # A device whose own link is down keeps its messages in the spool (evictable, as
        # offline messages are); the rest go out at once and are kept from eviction meanwhile.
        live = [self._connected and r.device_id not in self._down for r in rows]
        ids = self._spool.put_many(rows, now_s, self._submitted, keep_new=live)
        self._send_live(
            [
                SpoolRow(i, r.device_id, r.channel, r.topic, r.priority, r.created_s, r.payload)
                for i, r, send in zip(ids, rows, live, strict=True)
                if send
            ]
        )

    def _send_live(self, rows: Sequence[SpoolRow]) -> None:
        for row in rows:
            if row.device_id not in self._down:
                self._submit(row, row.payload)
                self.sent_live += 1

    def _wall_s(self) -> float:
        """Monotonic wall-clock seconds (the agent's clock runs ``speed`` times faster)."""
        return self._clock.monotonic_s() / self._speed

    def _pump_replay(self) -> float:
        """Replay what the bucket grants; clock seconds until replay can go on."""
        if not self._connected:
            return IDLE_WAIT_S
        rows, wall_wait_s = self._replay.take(
            self._spool,
            self._policy.max_inflight - len(self._inflight),
            self._down,
            self._submitted,
            self._wall_s(),
        )
        for row in rows:
            self._submit(row, mark_historical(row))
            self.sent_historical += 1
        return wall_wait_s * self._speed

    def _submit(self, row: SpoolRow, payload: bytes) -> None:
        mid = self._transport.publish(row.topic, payload)
        self._inflight[mid] = row.id
        self._submitted.add(row.id)

    def _publish_status(self, device: DeviceRuntime, state: str, reason: str = "") -> None:
        # Status is state, not history: it is retained, never spooled, and re-sent on connect.
        topic = str(device.topic.sibling(Channel.STATUS))
        reason = reason or (device.birth_reason if state == "online" else "")
        mid = self._transport.publish(topic, encode(device.status(state, reason)), retain=True)
        self._status_mids.add(mid)

    def _publish_gateway_status(self, state: str, reason: str) -> None:
        if self._gateway is not None:
            topic, payload = self._gateway(state, reason)
            self._status_mids.add(self._transport.publish(topic, payload, retain=True))

    def _drop_report_row(self, device_id: str, counts: dict[str, int]) -> NewRow:
        device = self._devices.get(device_id)
        if device is None:
            # Drops of a device no longer hosted: reported by the first hosted device, naming
            # the device they belong to (counts must not be lost, nor pinned on the wrong one).
            device = next(iter(self._devices.values()))
        report = device.drop_report(counts, for_device_id=device_id)
        now_s = self._clock.now_s()
        return NewRow(
            report.device_id,
            report.channel.value,
            report.topic,
            report.priority,
            now_s,
            encode(report.message),
        )


_TELEMETRY = msgspec.json.Decoder(Telemetry)
_EVENT = msgspec.json.Decoder(Event)


def mark_historical(row: SpoolRow) -> bytes:
    """The row's payload with ``historical: true`` (acknowledgements have no such field)."""
    if row.channel == Channel.TELEMETRY.value:
        return encode(msgspec.structs.replace(_TELEMETRY.decode(row.payload), historical=True))
    if row.channel == Channel.EVENT.value:
        return encode(msgspec.structs.replace(_EVENT.decode(row.payload), historical=True))
    return row.payload
