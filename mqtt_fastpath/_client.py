"""paho-mqtt's ``Client`` with a receive path fit for tens of thousands of messages a second.

Measured with py-spy and cProfile (docs/ingest.md), paho 2.2 spends ~80 us on each MQTT v5
PUBLISH, nearly all of it building a ``Properties`` object (a dozen dicts and lists per
instance), and reads every packet with three to four ``recv`` calls. This subclass keeps paho
for everything that is protocol state (CONNECT, session, SUBSCRIBE, keep-alive, PUBACK framing,
outgoing publishes, reconnect) and changes three things, all in the network thread:

* **Buffered reads**: ``_sock_recv`` takes up to 64 KiB from the socket and serves paho's
  small reads from that buffer. ``select()`` cannot see bytes already in the buffer, so the
  owner must call :meth:`FastClient.read_burst` whenever :meth:`FastClient.buffered` is
  true, before waiting on the socket again (:meth:`FastClient.wait` returns at once then).
* **A lean PUBLISH path**: a QoS 1 PUBLISH with an empty property block and a UTF-8 topic
  that lies whole in the buffer is cut out of it directly and becomes a :class:`Delivery`;
  a burst's deliveries are handed to ``deliver`` as one list. Anything else (other packet
  types, properties, QoS 0 or 2, an empty or non-UTF-8 topic, a malformed length) stops the
  cutting and goes through paho's ``loop_read()`` unchanged, which reads the same buffer, so
  the byte stream is consumed in order by exactly one reader at a time. A PUBLISH split
  across two reads is assembled by paho and still takes the lean path in ``_handle_publish``.
* **Coalesced PUBACKs**: :meth:`FastClient.ack_many` queues the PUBACKs of a whole batch as
  ONE entry of paho's out-queue, sent with one ``send``. The entry holds whole 4-byte PUBACK
  frames only, and paho's out-queue never interleaves entries, so frames stay intact even when
  a send is partial.

Pinned to paho-mqtt 2.x internals (``_sock_recv``, ``_handle_publish``, ``_in_packet``,
``_packet_queue``, ``_msgtime_mutex``); tests/unit/cloud_ingest/test_client.py and
tests/unit/alerting/test_consumer_client.py drive the real parser through a fake socket, so a
paho upgrade that changes them fails there first.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

_READ_SIZE: Final = 65_536
_PUBLISH: Final = 0x30
_PUBACK: Final = 0x40
_PUBACK_HEAD: Final = 0x4002_0000
"""A PUBACK frame as a big-endian 32-bit word: type 0x40, remaining length 2, packet id."""
_MAX_LENGTH_SHIFT: Final = 21
"""A remaining length has at most 4 bytes (shifts 0, 7, 14, 21)."""
_QOS_MASK: Final = 0x06
_DUP_FLAG: Final = 0x08


class Delivery(NamedTuple):
    """A received PUBLISH, as cheap as Python allows (the ``Inbound`` shape of ``_batch``)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool


_new_delivery = tuple.__new__


def puback_frames(mids: Sequence[int]) -> bytes:
    """PUBACK packets (reason Success, MQTT 3.1.1 and 5 alike) for ``mids``, back to back."""
    return struct.pack(f"!{len(mids)}I", *[_PUBACK_HEAD | mid for mid in mids])


class FastClient(mqtt.Client):
    """A paho ``Client`` (MQTT v5, manual acks) whose receive path is driven by its owner.

    The owner runs one thread that calls :meth:`wait`, :meth:`read_burst`, ``loop_write()``
    and ``loop_misc()``; never ``loop()``, ``loop_start()`` or ``loop_forever()``.
    """

    def __init__(self, client_id: str, deliver: Callable[[list[Delivery]], None]) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        self._deliver = deliver
        self._rbuf = b""
        self._rpos = 0
        self._would_block = False
        self.fast_deliveries = 0
        self.slow_deliveries = 0

    # -- buffered socket reads -----------------------------------------------------------

    def reconnect(self) -> MQTTErrorCode:
        """paho's reconnect, dropping bytes buffered from the previous connection."""
        self._rbuf, self._rpos = b"", 0
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            try:
                buf = super()._sock_recv(_READ_SIZE)
            except BlockingIOError:
                self._would_block = True
                raise
            pos = 0
            self._rbuf = buf
            if not buf:
                return buf  # end of stream: paho sees it and reports the connection lost
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    def buffered(self) -> bool:
        """True if bytes wait in our buffer (or the TLS layer's), invisible to ``select()``."""
        if self._rpos < len(self._rbuf):
            return True
        pending = getattr(self._sock, "pending", None)
        return bool(pending and pending() > 0)

    def read_burst(self, max_packets: int) -> MQTTErrorCode:
        """Handle up to about ``max_packets`` packets, stopping once the socket is drained.

        Whole lean PUBLISH packets are cut straight out of the buffer; everything else (other
        packet types, a packet split across two reads) goes through paho's ``loop_read()``,
        which reads from the same buffer.
        """
        self._would_block = False
        handled = 0
        while handled < max_packets:
            if self._in_packet["command"] == 0:  # paho is not in the middle of a packet
                handled += self._frame_buffered(max_packets - handled)
            rc = self.loop_read()
            handled += 1
            if rc != mqtt.MQTT_ERR_SUCCESS or self._would_block:
                return rc
        return mqtt.MQTT_ERR_SUCCESS

    def _frame_buffered(self, limit: int) -> int:
        """Deliver the lean PUBLISH packets lying whole in the buffer; stop at anything else."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        out: list[Delivery] = []
        while len(out) < limit:
            frame = _frame_at(buf, pos, end)
            if frame is None:
                break
            start, stop = frame
            delivery = _lean_publish(buf[pos], buf, start, stop)
            if delivery is None:
                break
            out.append(delivery)
            pos = stop
        if out:
            self._rpos = pos
            with self._msgtime_mutex:  # what paho's reader does for keep-alive
                self._last_bytes_received = mqtt.time_func()
            self.fast_deliveries += len(out)
            self._deliver(out)
        return len(out)

    def wait(self, wake: socket.socket, timeout_s: float) -> list[Any] | None:
        """Wait until the socket or ``wake`` is readable, or writable if paho has output.

        Returns what ``select()`` found readable (empty after a time-out, or at once if bytes
        are buffered), or None if there is no connection to wait on.
        """
        sock = self._sock
        if sock is None:
            return None
        if self.buffered():
            return []
        wlist = [sock] if self.want_write() else []
        try:
            readable, _, _ = select.select([sock, wake], wlist, [], timeout_s)
        except (OSError, ValueError):
            return None  # the socket was closed under us
        return readable

    # -- the lean PUBLISH path -----------------------------------------------------------

    def _handle_publish(self) -> MQTTErrorCode:
        # A PUBLISH that paho's own reader assembled (it was split across two reads).
        header: int = self._in_packet["command"]
        packet = bytes(self._in_packet["packet"])
        delivery = _lean_publish(header, packet, 0, len(packet))
        if delivery is None:
            self.slow_deliveries += 1
            rc: MQTTErrorCode = super()._handle_publish()
            return rc
        self.fast_deliveries += 1
        self._deliver([delivery])
        return mqtt.MQTT_ERR_SUCCESS

    # -- coalesced acknowledgements ------------------------------------------------------

    def ack_many(self, mids: list[int]) -> MQTTErrorCode:
        """Queue the PUBACKs of ``mids`` (QoS 1) as one out-packet: one ``send`` for a batch.

        Must run in the network thread, like every call into paho here.
        """
        if not mids:
            return mqtt.MQTT_ERR_SUCCESS
        frames = puback_frames(mids)
        rc: MQTTErrorCode = self._packet_queue(_PUBACK, frames, 0, 0)
        return rc


def _frame_at(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """``(start, stop)`` of the body of the packet at ``pos`` if it lies whole in ``buf``.

    None if it is incomplete or its remaining length is malformed (paho then reads it and
    reports the protocol error).
    """
    length, shift, i = 0, 0, pos + 1
    while i < end and shift <= _MAX_LENGTH_SHIFT:
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return (i, i + length) if i + length <= end else None
        shift += 7
    return None


def _lean_publish(header: int, buf: bytes, start: int, stop: int) -> Delivery | None:
    """The PUBLISH in ``buf[start:stop]`` if it is the common case (QoS 1, no properties).

    Layout after the fixed header: topic length (2), topic, packet id (2), property length
    (a variable byte integer; a single 0 byte when there are none), payload.
    """
    if header & 0xF0 != _PUBLISH or (header & _QOS_MASK) >> 1 != 1 or stop - start < 2:
        return None
    topic_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
    # An empty topic means a topic alias, which paho handles (or refuses).
    if topic_end == start + 2 or stop < topic_end + 3 or buf[topic_end + 2] != 0:
        return None
    try:
        topic = buf[start + 2 : topic_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    mid = (buf[topic_end] << 8) | buf[topic_end + 1]
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (a measurable cost per message).
    fields = (topic, buf[topic_end + 3 : stop], mid, 1, bool(header & _DUP_FLAG))
    return _new_delivery(Delivery, fields)
