"""The broker's drop counter: increases counted, logged as errors, restarts understood."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from cloud_ingest import (
    DROPPED_TOPIC,
    UPTIME_TOPIC,
    BrokerDropWatch,
    IngestSection,
    PromMetrics,
    subscriptions_of,
)


@pytest.fixture
def seen() -> list[tuple[int, int]]:
    return []


@pytest.fixture
def watch(seen: list[tuple[int, int]]) -> BrokerDropWatch:
    return BrokerDropWatch(lambda increase, total: seen.append((increase, total)))


def test_the_first_value_counts_in_full_and_is_an_error(
    watch: BrokerDropWatch, seen: list[tuple[int, int]]
) -> None:
    with capture_logs() as logs:
        watch.on_message(DROPPED_TOPIC, b"400")
    assert (watch.total, watch.seen, watch.take_delta()) == (400, 400, 400)
    assert seen == [(400, 400)]
    assert logs == [
        {"event": "broker_dropped_messages", "log_level": "error", "dropped": 400,
         "broker_total": 400, "topic": DROPPED_TOPIC},
    ]  # fmt: skip


def test_only_increases_are_new_and_the_delta_is_taken_once(
    watch: BrokerDropWatch, seen: list[tuple[int, int]]
) -> None:
    watch.on_message(DROPPED_TOPIC, b"0")  # Mosquitto publishes 0 at start: nothing lost
    watch.on_message(DROPPED_TOPIC, b"10")
    assert watch.take_delta() == 10
    assert watch.take_delta() == 0
    with capture_logs() as logs:
        watch.on_message(DROPPED_TOPIC, b"10")  # the retained value again, after a reconnect
    assert logs == []
    watch.on_message(DROPPED_TOPIC, b"25")
    assert (watch.seen, watch.take_delta(), watch.total) == (25, 15, 25)
    assert seen == [(10, 10), (15, 25)]


def test_uptime_going_down_means_the_counter_restarted(watch: BrokerDropWatch) -> None:
    watch.on_message(UPTIME_TOPIC, b"500 seconds")
    watch.on_message(DROPPED_TOPIC, b"100")
    watch.on_message(UPTIME_TOPIC, b"3 seconds")  # broker restarted
    watch.on_message(DROPPED_TOPIC, b"150")  # 150 new drops, not 50
    assert watch.seen == 250


def test_a_lower_value_without_uptime_is_also_a_restart(watch: BrokerDropWatch) -> None:
    watch.on_message(DROPPED_TOPIC, b"100")
    watch.on_message(DROPPED_TOPIC, b"7")
    assert (watch.seen, watch.total) == (107, 7)


def test_unreadable_payloads_are_counted_not_raised(watch: BrokerDropWatch) -> None:
    with capture_logs() as logs:
        for payload in (b"", b"lots", b"-3", b"\xff"):
            watch.on_message(DROPPED_TOPIC, payload)
    assert watch.malformed == 4
    assert watch.seen == 0
    assert {entry["event"] for entry in logs} == {"broker_sys_unreadable"}


def test_prometheus_sees_increases_and_the_broker_total() -> None:
    metrics = PromMetrics()
    watch = BrokerDropWatch(metrics.broker_dropped_seen)
    watch.on_message(DROPPED_TOPIC, b"40")
    watch.on_message(DROPPED_TOPIC, b"45")
    value = metrics.registry.get_sample_value
    assert value("xiuhua_ingest_broker_dropped_total") == 45
    assert value("xiuhua_ingest_broker_dropped_reported") == 45


def test_subscriptions_device_channels_shared_sys_counters_not() -> None:
    subs = subscriptions_of(IngestSection(group="g", shared_subscription=True))
    assert [(s.topic_filter, s.qos, s.retain_handling) for s in subs] == [
        ("$share/g/xh/v1/+/+/+/telemetry", 1, 1),
        ("$share/g/xh/v1/+/+/+/event", 1, 1),
        ("$share/g/xh/v1/+/+/+/status", 1, 1),
        ("$share/g/xh/v1/_alert/+/+", 1, 1),
        ("$share/g/xh/v1/_incident/+/+", 1, 1),
        ("$share/g/xh/v1/_alerting/+/stats", 1, 1),
        ("$share/g/xh/v1/_deadletter/alerting", 1, 1),
        (UPTIME_TOPIC, 0, 0),
        (DROPPED_TOPIC, 0, 0),
    ]
    alone = subscriptions_of(IngestSection(watch_broker_drops=False))
    assert [s.topic_filter for s in alone] == [
        "xh/v1/+/+/+/telemetry", "xh/v1/+/+/+/event", "xh/v1/+/+/+/status",
        "xh/v1/_alert/+/+", "xh/v1/_incident/+/+", "xh/v1/_alerting/+/stats",
        "xh/v1/_deadletter/alerting",
    ]  # fmt: skip


def test_the_default_is_a_plain_persistent_subscription_of_every_district() -> None:
    assert not IngestSection().shared_subscription
    assert IngestSection().partition().everything


def test_a_partition_subscribes_to_its_districts_only() -> None:
    subs = subscriptions_of(IngestSection(districts=("luqiao",), watch_broker_drops=False))
    assert [(s.topic_filter, s.qos) for s in subs] == [
        ("xh/v1/luqiao/+/+/telemetry", 1), ("xh/v1/luqiao/+/+/event", 1),
        ("xh/v1/luqiao/+/+/status", 1),
        ("xh/v1/_alert/luqiao/+", 1), ("xh/v1/_incident/luqiao/+", 1),
        ("xh/v1/_alerting/+/stats", 1), ("xh/v1/_deadletter/alerting", 1),
    ]  # fmt: skip
    plan = IngestSection(instance="b", partitions={"a": ("jiaojiang",), "b": ("huangyan",)})
    assert plan.partition().districts == ("huangyan",)
