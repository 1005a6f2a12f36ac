"""MQTT frames and a fake socket for driving a paho client's real parser in unit tests."""

from __future__ import annotations

import struct
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from mqtt_fastpath import FastClient


class FakeSocket:
    """Serves ``data`` in the given fragment sizes; records what is sent."""

    def __init__(self, data: bytes = b"", sizes: list[int] | None = None, send_max: int = 0):
        self._data, self._pos = data, 0
        self._sizes = sizes or []
        self._send_max = send_max
        self.sent: list[bytes] = []
        self.recv_calls = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._data += data

    def recv(self, bufsize: int) -> bytes:
        self.recv_calls += 1
        if self._pos >= len(self._data):
            if self.eof:
                return b""
            raise BlockingIOError
        size = min(bufsize, self._sizes.pop(0) if self._sizes else bufsize)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def send(self, buf: bytes | bytearray) -> int:
        size = len(buf) if not self._send_max else min(self._send_max, len(buf))
        self.sent.append(bytes(buf[:size]))
        return size

    def close(self) -> None:
        pass


def publish(
    topic: str | bytes, payload: bytes, mid: int, *, props: bytes = b"\x00", flags: int = 0x32
) -> bytes:
    """An MQTT v5 PUBLISH packet (QoS 1 unless ``flags`` says otherwise)."""
    raw = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(raw)) + raw
    if flags & 0x06:
        body += struct.pack("!H", mid)
    body += props + payload
    size, length = len(body), bytearray()
    while True:
        byte, size = size % 128, size // 128
        length.append(byte | 0x80 if size else byte)
        if not size:
            break
    return bytes([flags]) + bytes(length) + body


def make_client(sock: FakeSocket) -> tuple[FastClient, list[Any]]:
    got: list[Any] = []
    client = FastClient("test", got.extend)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client._sock = sock  # type: ignore[assignment]  # no network in unit tests
    return client, got


def read_all(client: FastClient) -> MQTTErrorCode:
    rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    for _ in range(10_000):
        rc = client.read_burst(50)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or (client._would_block and not client.buffered()):
            return rc
    raise AssertionError("read_burst never drained the socket")
