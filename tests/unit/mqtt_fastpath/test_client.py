"""FastClient through paho's real parser, fed by a fake socket: fragments, fallbacks, acks.

The ingester and the alerting consumer both read MQTT through this client, so its cases live here
once; each component's own tests cover what it builds on top (acks of a connection, publishes).
"""

from __future__ import annotations

import random
import socket

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from mqtt_fastpath import Delivery, puback_frames
from tests.mqtt_frames import FakeSocket, make_client, publish, read_all


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
