"""Building the alerting service from settings: the one place that knows every concrete class.

A partitioned instance evaluates the devices of its districts only (so a device that is never
heard from is reported by exactly one instance), but reads the rain gauges of every district:
the nearest gauges of a manhole near a district's edge may stand across it.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Protocol

import structlog

from alerting._checkpoint import StateStore
from alerting._consumer import Backoff, MqttConsumer, Subscription
from alerting._consumer_route import Router
from alerting._engine import Engine
from alerting._hygiene import Silence
from alerting._metrics import PromMetrics
from alerting._network import Network, load_network, network_from_registry
from alerting._rules import RuleSet, default_rules_dir, load_rules
from alerting._service import AlertingService
from alerting._settings import AlertingSection, AlertingSettings
from alerting.errors import StoreError
from telemetry_core.clock import Clock, SystemClock
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.partition import Partition, stale_filters
from telemetry_core.registry import Registry, load_registry
from telemetry_core.topics import Channel, subscription

log = structlog.get_logger()

CONSUMED_CHANNELS = (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)
SHARED_KINDS = frozenset(k for k in DeviceKind if k.value == "rain")
"""Kinds whose telemetry every instance reads, whatever its partition (context, not alerts)."""


class Store(StateStore, Protocol):
    """The state store as the service needs it: checkpoints and maintenance silences."""

    def silences(self) -> Sequence[Silence]:
        """The silences in force or to come."""
        ...


def open_store(url: str) -> Store:
    """The engine's SQLAlchemy store at ``url`` (SQLite or PostgreSQL)."""
    from alerting._store import AlertStore

    store: Store = AlertStore(url)
    return store


def load_fleet(settings: AlertingSettings) -> Registry:
    """The registry named by ``[registry] path``; ``ConfigError`` if none is configured."""
    if settings.registry.path is None:
        raise ConfigError("registry.path is not set: the alerting service needs the fleet file")
    return load_registry(settings.registry.path)


def rules_of(section: AlertingSection) -> RuleSet:
    """The rules the section names, or the default rule set (``RuleError`` if one is bad)."""
    return load_rules(list(section.rules) or [default_rules_dir()])


def partition_devices(registry: Registry, districts: Sequence[str]) -> Registry:
    """The devices this instance evaluates: those of its districts (all when none is given)."""
    if not districts:
        return registry
    known = {d.district for d in registry}
    unknown = sorted(set(districts) - known)
    if unknown:
        raise ConfigError(f"alerting.districts: {', '.join(unknown)} not in the fleet")
    return Registry(d for d in registry if d.district in districts)


def subscriptions_of(section: AlertingSection) -> list[Subscription]:
    """Device channels of the partition (every district when none is given), and rain gauges
    of every district when partitioned."""
    partition = Partition(section.districts)
    subs = [Subscription(f) for f in partition.topic_filters(CONSUMED_CHANNELS)]
    if not partition.everything:
        subs += [Subscription(subscription(Channel.TELEMETRY, kind=k)) for k in SHARED_KINDS]
    return subs


def stale_subscriptions(section: AlertingSection, registry: Registry) -> list[str]:
    """Filters our persistent session may still hold from an earlier partition."""
    known = {d.district for d in registry}
    return stale_filters(Partition(section.districts), CONSUMED_CHANNELS, known,
                         group="xiuhua-alerting", shared=False)  # fmt: skip


def network_of(section: AlertingSection, registry: Registry) -> Network | None:
    """The network file, or what the registry says (``swmm_node`` attributes, rain gauges)."""
    if section.network is not None:
        return load_network(section.network)
    return network_from_registry(registry)


def build_service(
    settings: AlertingSettings,
    registry: Registry,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
) -> AlertingService:
    """An alerting service wired from ``settings``, carrying on from the stored checkpoint."""
    section = settings.alerting
    rules = rules_of(section)
    mine = partition_devices(registry, section.districts)
    network = network_of(section, registry)
    store = store or open_store(section.state_url)
    engine = _engine(store, rules, mine, network)
    # The engine holds about a million small long-lived objects: keep them out of the cyclic
    # collector's scans, whose full passes would otherwise pause evaluation.
    gc.collect()
    gc.freeze()
    router = Router(
        engine, registry, section.districts, max_payload_bytes=section.max_payload_bytes,
        max_future_s=section.max_future_s, shared_kinds=SHARED_KINDS,
    )  # fmt: skip
    metrics = PromMetrics()
    if section.metrics_port:
        metrics.serve(section.metrics_host, section.metrics_port)
    source = MqttConsumer(
        settings.mqtt,
        client_id=settings.mqtt.client_id or f"xiuhua-alerting-{section.instance}",
        subscriptions=subscriptions_of(section),
        receive_maximum=section.receive_maximum,
        session_expiry_s=section.session_expiry_s,
        backoff=Backoff(section.retry_min_s, section.retry_max_s),
        stale_filters=stale_subscriptions(section, registry),
    )
    log.info("alerting_configured", instance=section.instance, mqtt=settings.mqtt.url,
             districts=",".join(section.districts) or "all districts", devices=len(mine),
             rules=len(rules.rules), state=section.state_url)  # fmt: skip
    return AlertingService(
        source=source, router=router, store=store, clock=clock or SystemClock(),
        instance=section.instance, checkpoint_interval_s=section.checkpoint_interval_s,
        tick_interval_s=section.tick_interval_s, stats_interval_s=section.stats_interval_s,
        catchup_quiet_s=section.catchup_quiet_s, catchup_lateness_s=section.catchup_lateness_s,
        deadletter_topic=section.deadletter_topic, max_unconfirmed=section.max_unconfirmed,
        store_backoff=Backoff(section.retry_min_s, section.retry_max_s), devices=len(mine),
        metrics=metrics, silences=store.silences, silence_refresh_s=section.silence_refresh_s,
    )  # fmt: skip


def _engine(store: Store, rules: RuleSet, devices: Registry, network: Network | None) -> Engine:
    parts = store.load()
    silences = store.silences()
    if parts is None:
        log.info("alerting_state_fresh")
        return Engine(rules, devices, network, silences)
    try:
        engine = Engine.restore_parts(parts, rules, devices, network, silences)
    except ValueError as exc:
        raise StoreError(
            f"alert store {store.name}: the stored state cannot be read: {exc}; "
            f"to start without state, delete the rows of engine_state"
        ) from exc
    log.info("alerting_state_restored", parts=len(parts), state_bytes=engine.state_bytes)
    return engine
