"""A publisher that is never the bottleneck: pre-built MQTT PUBLISH packets over a raw socket.

Used by bench_ingest.py. Packets are MQTT 3.1.1 QoS 1, built before any timing starts, and
written in large chunks; PUBACKs (4 bytes each) are counted as they come back. At most
``window`` messages are unacknowledged, below 65,535 so a packet id is never reused while
still in flight.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Sequence

_CONNACK_OK = bytes([0x20, 0x02, 0x00, 0x00])
_PUBACK_SIZE = 4
_CHUNK_PACKETS = 500


def _remaining_length(size: int) -> bytes:
    out = bytearray()
    while True:
        byte, size = size % 128, size // 128
        out.append(byte | 0x80 if size else byte)
        if not size:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    """MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s."""
    body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _utf8(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """MQTT 3.1.1 PUBLISH at QoS 1 with packet id ``mid`` (1..65535)."""
    body = _utf8(topic) + struct.pack("!H", mid) + payload
    return bytes([0x32]) + _remaining_length(len(body)) + body


def publish_packets(messages: Sequence[tuple[str, bytes]], first: int = 0) -> list[bytes]:
    """PUBLISH packets for ``(topic, payload)`` pairs, packet ids cycling through 1..65535."""
    return [
        publish_packet(topic, payload, (first + i) % 65_535 + 1)
        for i, (topic, payload) in enumerate(messages)
    ]


def forget_session(host: str, port: int, client_id: str) -> None:
    """Discard the broker's persistent session of ``client_id`` (and its subscriptions).

    A clean-session CONNECT under the same id drops it. Without this, every session an
    earlier run left behind keeps a subscription, and the broker queues each later message
    for it too: later runs would pay for earlier ones.
    """
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(connect_packet(client_id))
        if sock.recv(4) != _CONNACK_OK:
            raise RuntimeError(f"broker refused the clean connect of {client_id!r}")
        sock.sendall(bytes([0xE0, 0x00]))


class BlastPublisher:
    """One raw MQTT connection; :meth:`send` writes packets as fast as the broker takes them."""

    def __init__(self, host: str, port: int, client_id: str, window: int = 20_000) -> None:
        if not 0 < window < 65_535:
            raise ValueError("window must be in 1..65534 so packet ids are never reused")
        self._window = window
        self._sock = socket.create_connection((host, port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(connect_packet(client_id))
        reply = self._sock.recv(4)
        if reply != _CONNACK_OK:
            raise RuntimeError(f"broker refused the publisher: {reply!r}")
        self._sock.setblocking(False)
        self._spare = 0  # bytes of a PUBACK split across two reads

    def send(self, packets: Sequence[bytes], timeout_s: float = 600.0) -> None:
        """Write every packet and return once the broker acknowledged all of them."""
        deadline = time.monotonic() + timeout_s
        sent = acked = 0
        pending = memoryview(b"")
        while acked < len(packets):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{acked}/{len(packets)} acknowledged by the broker")
            if not pending and sent < len(packets) and sent - acked < self._window:
                chunk = packets[sent : sent + min(_CHUNK_PACKETS, self._window - (sent - acked))]
                pending, sent = memoryview(b"".join(chunk)), sent + len(chunk)
            wlist = [self._sock] if pending else []
            readable, writable, _ = select.select([self._sock], wlist, [], 1.0)
            if writable:
                pending = pending[self._write(pending) :]
            if readable:
                acked += self._read_acks()

    def _write(self, data: memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def _read_acks(self) -> int:
        try:
            data = self._sock.recv(65_536)
        except BlockingIOError:
            return 0
        if not data:
            raise ConnectionError("the broker closed the publisher's connection")
        total = self._spare + len(data)
        self._spare = total % _PUBACK_SIZE
        return total // _PUBACK_SIZE

    def close(self) -> None:
        """Send DISCONNECT and close."""
        self._sock.setblocking(True)
        self._sock.sendall(bytes([0xE0, 0x00]))
        self._sock.close()
