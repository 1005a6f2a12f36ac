"""IngestClient through paho's real parser, fed by a fake socket: fragments, fallbacks, acks."""

from __future__ import annotations

import random
import select
import socket
import struct
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from cloud_ingest import (
    DROPPED_TOPIC,
    Backoff,
    Delivery,
    IngestClient,
    MqttSource,
    Subscription,
    puback_frames,
)
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


def make_client(sock: FakeSocket) -> tuple[IngestClient, list[Any]]:
    got: list[Any] = []
    client = IngestClient("test", got.extend)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client._sock = sock  # type: ignore[assignment]  # no network in unit tests
    return client, got


def read_all(client: IngestClient) -> MQTTErrorCode:
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


sys_seen: list[tuple[str, bytes]] = []


@pytest.fixture
def src() -> Iterator[MqttSource]:
    """A source that is never started: its network thread's steps are called by hand."""
    source = MqttSource(
        MqttSettings(), client_id="t", subscriptions=[Subscription("x/#"), Subscription("y", 0)],
        receive_maximum=100, session_expiry_s=60, backoff=Backoff(0.1, 1.0), wake_batch=10,
        on_sys=lambda topic, payload: sys_seen.append((topic, payload)),
    )  # fmt: skip
    yield source
    source.stop()


def readable(src: MqttSource) -> bool:
    return bool(select.select([src._wake_r], [], [], 0)[0])


def test_acks_of_the_current_connection_go_out_once_stale_ones_never(src: MqttSource) -> None:
    sock = FakeSocket()
    src.client._sock = sock  # type: ignore[assignment]
    src.generation = 2
    src.ack_later(2, [1, 2, 3])
    src.ack_later(1, [4, 5])  # an older connection: those packet ids mean nothing now
    src.ack_later(2, [6])
    src._flush_outgoing()
    src._flush_outgoing()
    assert b"".join(sock.sent) == puback_frames([1, 2, 3, 6])
    assert src.stale_acks == 2


@pytest.mark.parametrize("pokes", [1, 3])
def test_handing_over_acks_pokes_the_network_thread_once(src: MqttSource, pokes: int) -> None:
    assert not readable(src)
    for mid in range(pokes):
        src.ack_later(0, [mid + 1])
    assert readable(src)
    assert src._wake_r.recv(100) == b"\0"  # one byte however many hand-overs
    src._poked = True
    src._unpoke()
    src.ack_later(0, [9])  # after the drain: must poke again or the ack would wait
    assert readable(src)


def test_broker_sys_messages_bypass_the_inbox(src: MqttSource) -> None:
    sys_seen.clear()
    data = (
        publish("xh/v1/a/drain/d-1/telemetry", b"1", 1)
        + publish(DROPPED_TOPIC, b"400", 0, flags=0x31)  # QoS 0, retained: as Mosquitto sends it
        + publish(b"t/\xff", b"2", 0, flags=0x30)  # not UTF-8: still the pipeline's to refuse
    )
    src.client._sock = FakeSocket(data)  # type: ignore[assignment]
    read_all(src.client)
    assert sys_seen == [(DROPPED_TOPIC, b"400")]
    assert [m.payload for m in src.inbox] == [b"1", b"2"]


def test_subscribed_only_once_every_subscription_is_acknowledged(src: MqttSource) -> None:
    ok = ReasonCode(PacketTypes.SUBACK, identifier=1)
    refused = ReasonCode(PacketTypes.SUBACK, identifier=0x87)  # Not authorized
    src._pending_subacks = 2
    src._on_subscribe(src.client, None, 1, [ok], None)
    assert not src.subscribed.is_set()
    src._on_subscribe(src.client, None, 2, [refused], None)  # e.g. no read access to $SYS
    assert src.subscribed.is_set()
    assert src.refused_subscriptions == 1


def test_dead_letters_wait_when_pahos_queue_is_full_instead_of_being_dropped(
    src: MqttSource,
) -> None:
    sock = FakeSocket()
    src.client._sock = sock  # type: ignore[assignment]
    src.client.max_queued_messages_set(2)
    src.generation = 0
    for i in range(4):
        src.publish_later("dl", f"reject {i}".encode())
    src.ack_later(0, [7])
    src._flush_outgoing()
    assert src.dropped_publishes == 0
    assert len(src._outgoing) == 3  # two waiting dead letters, then the ack, in order
    src.client._out_messages.clear()  # the broker's PUBACKs made room
    src._flush_outgoing()
    assert src.dropped_publishes == 0
    assert not src._outgoing
    assert b"".join(sock.sent).endswith(puback_frames([7]))
