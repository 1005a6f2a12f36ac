"""Building an ingester from settings: the one place that knows every concrete class."""

from __future__ import annotations

import threading

import structlog

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
from telemetry_core.partition import Partition, check_known, overlaps, stale_filters, uncovered
from telemetry_core.registry import Registry, load_registry
from telemetry_core.settings import InfluxSettings
from telemetry_core.topics import Channel

log = structlog.get_logger()


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
    """This instance's partition (every district by default) at QoS 1, plain unless
    ``shared_subscription``; then the broker's ``$SYS`` counters at QoS 0, never shared:
    every instance watches the broker's drops."""
    group = section.group if section.shared_subscription else None
    filters = section.partition().topic_filters(INGESTED_CHANNELS, share_group=group)
    device = [Subscription(f) for f in filters]
    device += [Subscription(f) for f in alert_filters(section.partition().districts, group)]
    broker = [Subscription(topic, qos=0, retain_handling=0) for topic in SYS_TOPICS]
    return device + (broker if section.watch_broker_drops else [])


def partition_of(section: IngestSection, registry: Registry) -> Partition:
    """This instance's partition, checked against the fleet and the plan.

    ``ConfigError`` if a district is not in the fleet, if two instances of
    ``ingest.partitions`` own one district, or if the plan leaves a district of the fleet
    to nobody (its messages would be queued nowhere).
    """
    known = {d.district for d in registry}
    plan = section.plan()
    for name, partition in plan.items():
        where = f"ingest.partitions.{name}" if section.partitions else "ingest.districts"
        check_known(partition, known, where)
    shared = overlaps(plan, known)
    if shared:
        both = "; ".join(f"district {d!r} belongs to {' and '.join(o)}" for d, o in shared.items())
        raise ConfigError(f"ingest.partitions: {both}; each district must have one instance")
    missing = uncovered(plan, known)
    if section.partitions and missing:
        raise ConfigError(
            f"ingest.partitions: no instance takes {', '.join(missing)}; messages of a"
            " district nobody subscribes to are not queued anywhere and are lost"
        )
    return section.partition()


def stale_subscriptions(section: IngestSection, registry: Registry) -> list[str]:
    """Filters our persistent session may still hold from an earlier partition or mode."""
    known = {d.district for d in registry}
    return stale_filters(
        section.partition(), INGESTED_CHANNELS, known,
        group=section.group, shared=section.shared_subscription,
    )  # fmt: skip


def log_start(settings: IngestSettings, registry: Registry, partition: Partition) -> None:
    """Say which broker, database, fleet and districts this instance works with."""
    ing, influx = settings.ingest, settings.influx
    target = influx.database if influx.api == "v1" else f"{influx.org}/{influx.bucket}"
    log.info(
        "ingest_configured", instance=ing.instance, mqtt=settings.mqtt.url,
        influx=influx.url, influx_api=influx.api, database=target,
        registry=str(settings.registry.path), devices=len(registry),
        districts=partition.describe(),
        subscription="shared $share/" + ing.group if ing.shared_subscription else "persistent",
    )  # fmt: skip
    if ing.shared_subscription:
        log.warning(
            "shared_subscription_loses_on_broker_restart", group=ing.group,
            window_s=f"up to {ing.retry_max_s:g}",
            hint="Mosquitto 2.0.11 does not restore $share subscriptions from persistence: "
            "what devices publish between a broker restart and our re-subscription is lost. "
            "Use districts (one partition per instance) for a lossless scale-out",
        )  # fmt: skip
    idle = sorted({d.district for d in registry} - partition.owned(d.district for d in registry))
    if idle and not ing.partitions:
        log.warning(
            "districts_not_consumed", districts=",".join(idle),
            hint="run another instance with these districts, or their messages are lost",
        )  # fmt: skip


def build_service(
    settings: IngestSettings,
    registry: Registry,
    *,
    sink: Sink | None = None,
    clock: Clock | None = None,
) -> IngestService:
    """An ingester wired from ``settings``: MQTT source, pipeline, sink, writer, metrics."""
    ing = settings.ingest
    partition = partition_of(ing, registry)
    log_start(settings, registry, partition)
    stop = threading.Event()
    metrics = PromMetrics()
    drops = BrokerDropWatch(metrics.broker_dropped_seen)
    source = MqttSource(
        settings.mqtt,
        client_id=settings.mqtt.client_id or f"xiuhua-{ing.group}-{ing.instance}",
        subscriptions=subscriptions_of(ing),
        stale_filters=stale_subscriptions(ing, registry),
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
