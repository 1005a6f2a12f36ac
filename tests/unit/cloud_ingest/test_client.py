"""The ingester's MqttSource over the shared lean client: acks per connection, wake-ups, $SYS,
subscriptions, dead letters that wait. The client's own parser cases: tests/unit/mqtt_fastpath."""

from __future__ import annotations

import select
from collections.abc import Iterator

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from cloud_ingest import DROPPED_TOPIC, Backoff, MqttSource, Subscription, puback_frames
from telemetry_core.settings import MqttSettings
from tests.mqtt_frames import FakeSocket, publish, read_all

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
