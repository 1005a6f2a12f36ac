"""Building an ingester from settings: the one place that knows every concrete class."""

from __future__ import annotations

import threading

from cloud_ingest._accounting import SeqTracker
from cloud_ingest._alerts import alert_filters
from cloud_ingest._broker import SYS_TOPICS, BrokerDropWatch
from cloud_ingest._metrics import PromMetrics
from cloud_ingest._mqtt import MqttSource, Subscription
from cloud_ingest._pipeline import Limits, Pipeline
from cloud_ingest._service import IngestService
from cloud_ingest._settings import IngestSection, IngestSettings
from cloud_ingest._sink_v2 import InfluxV2Sink
from cloud_ingest._sinks import InfluxV1Sink, Sink
from cloud_ingest._writer import Backoff, BatchWriter
from telemetry_core.clock import Clock, SystemClock
from telemetry_core.errors import ConfigError
from telemetry_core.registry import Registry, load_registry
from telemetry_core.settings import InfluxSettings
from telemetry_core.topics import Channel, subscription


def build_sink(settings: InfluxSettings) -> Sink:
    """The sink the ``[influx]`` section asks for; ``ConfigError`` if v2 lacks org or bucket."""
    secret = settings.password.get_secret_value() if settings.password else None
    if settings.api == "v1":
        return InfluxV1Sink(
            settings.url, settings.database, retention_policy=settings.retention_policy,
            username=settings.username, password=secret, timeout_s=settings.timeout_s,
        )  # fmt: skip
    if not settings.org or not settings.bucket:
        raise ConfigError("influx.api = 'v2' needs influx.org and influx.bucket")
    token = settings.token.get_secret_value() if settings.token else ""
    return InfluxV2Sink(
        settings.url, token=token, org=settings.org, bucket=settings.bucket,
        timeout_s=settings.timeout_s,
    )  # fmt: skip


def load_fleet(settings: IngestSettings) -> Registry:
    """The registry named by ``[registry] path``; ``ConfigError`` if none is configured."""
    if settings.registry.path is None:
        raise ConfigError("registry.path is not set: the ingester needs the fleet file")
    return load_registry(settings.registry.path)


def limits_of(section: IngestSection) -> Limits:
    """The validation policy of the ``[ingest]`` section."""
    return Limits(
        max_future_s=section.max_future_s, max_past_s=section.max_past_s,
        max_historical_past_s=section.max_historical_past_s,
        range_policy=section.range_policy, max_payload_bytes=section.max_payload_bytes,
    )  # fmt: skip


INGESTED_CHANNELS = (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)


def subscriptions_of(section: IngestSection) -> list[Subscription]:
    """Device channels at QoS 1 (shared unless turned off), then the broker's ``$SYS`` counters
    at QoS 0, never shared: every instance watches the broker's drops."""
    group = section.group if section.shared_subscription else None
    device = [Subscription(subscription(ch, share_group=group)) for ch in INGESTED_CHANNELS]
    device += [Subscription(f) for f in alert_filters(share_group=group)]
    broker = [Subscription(topic, qos=0, retain_handling=0) for topic in SYS_TOPICS]
    return device + (broker if section.watch_broker_drops else [])


def build_service(
    settings: IngestSettings,
    registry: Registry,
    *,
    sink: Sink | None = None,
    clock: Clock | None = None,
) -> IngestService:
    """An ingester wired from ``settings``: MQTT source, pipeline, sink, writer, metrics."""
    ing = settings.ingest
    stop = threading.Event()
    metrics = PromMetrics()
    drops = BrokerDropWatch(metrics.broker_dropped_seen)
    source = MqttSource(
        settings.mqtt,
        client_id=settings.mqtt.client_id or f"xiuhua-{ing.group}-{ing.instance}",
        subscriptions=subscriptions_of(ing),
        receive_maximum=ing.receive_maximum,
        session_expiry_s=ing.session_expiry_s,
        backoff=Backoff(ing.retry_min_s, ing.retry_max_s),
        wake_batch=ing.batch_size,
        on_sys=drops.on_message,
    )
    writer = BatchWriter(
        sink or build_sink(settings.influx),
        Backoff(ing.retry_min_s, ing.retry_max_s),
        sleep=lambda s: not stop.wait(s),
    )
    if ing.metrics_port:
        metrics.serve(ing.metrics_host, ing.metrics_port)
    return IngestService(
        source=source,
        pipeline=Pipeline(registry, limits_of(ing), SeqTracker()),
        writer=writer,
        clock=clock or SystemClock(),
        instance=ing.instance,
        batch_size=ing.batch_size,
        batch_interval_s=ing.batch_interval_s,
        pending_batches=ing.pending_batches,
        stats_interval_s=ing.stats_interval_s,
        deadletter_topic=ing.deadletter_topic,
        metrics=metrics,
        broker_drops=drops,
        stop_event=stop,
    )
