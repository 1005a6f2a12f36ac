"""The alerting consumer's lean client through paho's real parser (the ingester's technique, so
the same cases), and the consumer's acks and tracked publishes."""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode

from alerting._consumer import Backoff, MqttConsumer, PublishLedger, Subscription
from alerting._consumer_client import ConsumerClient, Delivery, puback_frames
from telemetry_core.settings import MqttSettings


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


def make_client(sock: FakeSocket) -> tuple[ConsumerClient, list[Any]]:
    got: list[Any] = []
    client = ConsumerClient("test", got.extend)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client._sock = sock  # type: ignore[assignment]  # no network in unit tests
    return client, got


def read_all(client: ConsumerClient) -> MQTTErrorCode:
    rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    for _ in range(10_000):
        rc = client.read_burst(50)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or (client._would_block and not client.buffered()):
            return rc
    raise AssertionError("read_burst never drained the socket")


def test_odd_fragments_deliver_every_message_once_in_order() -> None:
    rng = random.Random(7)
    expected = [(f"xh/v1/a/drain/d-{i}/telemetry", b'{"i":%d}' % i * (i % 9 + 1), i % 65535 + 1)
                for i in range(400)]  # fmt: skip
    data = b"".join(publish(t, p, m, flags=0x3A if m % 5 == 0 else 0x32) for t, p, m in expected)
    sizes = [rng.choice([1, 2, 3, 7, 64, 500, 4096]) for _ in range(len(data))]
    client, got = make_client(FakeSocket(data, sizes))
    assert read_all(client) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [(d.topic, d.payload, d.mid) for d in got] == expected
    assert all(isinstance(d, Delivery) for d in got)
    assert [d.dup for d in got] == [m % 5 == 0 for _, _, m in expected]
    assert client.fast_deliveries == 400
    assert not client.buffered()


def test_whole_buffer_is_cut_without_a_recv_per_packet() -> None:
    data = b"".join(publish("xh/v1/a/drain/d/telemetry", b"{}", i + 1) for i in range(1000))
    sock = FakeSocket(data)
    client, got = make_client(sock)
    read_all(client)
    assert len(got) == 1000
    assert sock.recv_calls < 10  # one 64 KiB read serves hundreds of packets


def test_properties_qos0_and_bad_topics_go_through_paho_in_order() -> None:
    expiry = b"\x05\x02\x00\x00\x00\x3c"  # property block: Message Expiry Interval 60 s
    data = (
        publish("t/lean", b"1", 1)
        + publish("t/props", b"2", 2, props=expiry)
        + publish("t/qos0", b"3", 0, flags=0x30)
        + publish(b"t/\xff\xfe", b"4", 4)  # a topic that is not UTF-8
        + publish("t/lean", b"5", 5)
    )
    client, got = make_client(FakeSocket(data))
    read_all(client)
    assert [m.payload for m in got] == [b"1", b"2", b"3", b"4", b"5"]
    assert isinstance(got[1], mqtt.MQTTMessage)
    assert got[1].properties is not None
    assert got[1].properties.json() == {"MessageExpiryInterval": 60}  # type: ignore[no-untyped-call]
    assert isinstance(got[2], mqtt.MQTTMessage)
    assert got[2].qos == 0
    assert isinstance(got[3], mqtt.MQTTMessage)  # paho keeps the raw topic; topic_of copes
    assert client.fast_deliveries == 2
    assert client.slow_deliveries == 3


def test_a_pingresp_between_publishes_is_handled_by_paho() -> None:
    data = publish("t/a", b"1", 1) + bytes([0xD0, 0x00]) + publish("t/a", b"2", 2)
    client, got = make_client(FakeSocket(data))
    client._ping_t = 123.0  # a PINGREQ is outstanding
    read_all(client)
    assert [d.payload for d in got] == [b"1", b"2"]
    assert client._ping_t == 0  # paho saw the PINGRESP


def test_malformed_length_is_a_protocol_error_not_a_hang() -> None:
    data = publish("t/a", b"1", 1) + bytes([0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    client, got = make_client(FakeSocket(data))
    assert read_all(client) == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert [d.payload for d in got] == [b"1"]


def test_end_of_stream_is_a_lost_connection() -> None:
    sock = FakeSocket(publish("t/a", b"1", 1)[:-1])
    sock.eof = True
    client, got = make_client(sock)
    assert read_all(client) == MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert got == []


def test_buffered_bytes_are_reported_so_the_loop_does_not_select() -> None:
    data = b"".join(publish("t/a", b"x", i + 1) for i in range(10))
    client, got = make_client(FakeSocket(data))
    client.read_burst(3)
    assert len(got) < 10
    assert client.buffered()
    wake, other = socket.socketpair()
    with wake, other:
        assert client.wait(wake, 5.0) == []  # at once: select() cannot see our buffer
    read_all(client)
    assert len(got) == 10


def test_puback_frames_are_whole_four_byte_packets() -> None:
    assert puback_frames([1, 258, 65535]) == bytes(
        [0x40, 2, 0, 1, 0x40, 2, 1, 2, 0x40, 2, 0xFF, 0xFF]
    )
    assert puback_frames([]) == b""


def test_a_batch_of_acks_is_one_write() -> None:
    sock = FakeSocket()
    client, _ = make_client(sock)
    client.ack_many(list(range(1, 5001)))
    assert len(sock.sent) == 1
    assert sock.sent[0] == puback_frames(list(range(1, 5001)))
    client.ack_many([])
    assert len(sock.sent) == 1


def test_partial_sends_keep_frames_whole_and_in_order() -> None:
    sock = FakeSocket(send_max=3)
    client, _ = make_client(sock)
    client.ack_many([1, 2, 3])
    client.ack_many([4])
    while client.want_write():
        client.loop_write()
    assert b"".join(sock.sent) == puback_frames([1, 2, 3, 4])


@pytest.fixture
def src() -> Iterator[MqttConsumer]:
    """A consumer that is never started: its network thread's steps are called by hand."""
    source = MqttConsumer(
        MqttSettings(), client_id="t", subscriptions=[Subscription("x/#")],
        receive_maximum=100, session_expiry_s=60, backoff=Backoff(0.1, 1.0),
    )  # fmt: skip
    yield source
    source.stop()


def test_acks_of_the_current_connection_go_out_once_stale_ones_never(src: MqttConsumer) -> None:
    sock = FakeSocket()
    src.client._sock = sock  # type: ignore[assignment]
    src.generation = 2
    src.ack_later(2, [1, 2, 3])
    src.ack_later(1, [4, 5])  # an older connection: those packet ids mean nothing now
    src.ack_later(2, [6])
    src._flush_outgoing()
    assert b"".join(sock.sent) == puback_frames([1, 2, 3, 6])
    assert src.stale_acks == 2


def test_publishes_are_numbered_in_order_and_confirmed_by_their_pubacks(src: MqttConsumer) -> None:
    for k in range(3):
        src.publish_later("xh/v1/_alert/jiaojiang/dr-jj-000001", b"%d" % k)
    assert src.publishes_queued == 3
    assert not src.ledger.confirmed_below(1)  # not even handed to paho yet
    src._flush_outgoing()  # not connected: paho queues them, and they get their packet ids
    mids = list(src.client._out_messages)
    assert len(mids) == 3
    src._on_publish(src.client, None, mids[1], None, None)  # PUBACKs may come out of order
    assert not src.ledger.confirmed_below(1)
    src._on_publish(src.client, None, mids[0], None, None)
    assert src.ledger.confirmed_below(2)
    assert not src.ledger.confirmed_below(3)
    src._on_publish(src.client, None, mids[2], None, None)
    assert src.ledger.confirmed_below(3)
    assert src.ledger.unconfirmed == 0


def test_an_unknown_puback_changes_nothing() -> None:
    ledger = PublishLedger()
    ledger.handed(7)
    ledger.acknowledged(99)
    assert not ledger.confirmed_below(1)
    assert ledger.confirmed_below(0)
