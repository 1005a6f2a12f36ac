"""The alerting consumer's acks and tracked publishes over the shared lean client (its parser
cases: tests/unit/mqtt_fastpath)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerting._consumer import Backoff, MqttConsumer, PublishLedger, Subscription
from mqtt_fastpath import puback_frames
from telemetry_core.settings import MqttSettings
from tests.mqtt_frames import FakeSocket


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
