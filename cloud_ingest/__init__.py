"""Cloud ingester: MQTT telemetry, events and statuses into InfluxDB, at least once, with
reasons for every refusal and the broker's drops counted.

Build one with :func:`build_service` from :class:`IngestSettings` and a registry, then
``start()`` and ``stop()`` it; ``xiuhua ingest --config FILE`` does exactly that.
"""

from cloud_ingest._accounting import DeviceCounters, SeqTracker
from cloud_ingest._app import (
    INGESTED_CHANNELS,
    build_service,
    build_sink,
    limits_of,
    load_fleet,
    subscriptions_of,
)
from cloud_ingest._batch import Batch, BatchBuilder, Inbound
from cloud_ingest._broker import DROPPED_TOPIC, UPTIME_TOPIC, BrokerDropWatch
from cloud_ingest._client import Delivery, IngestClient, puback_frames
from cloud_ingest._deadletter import REJECTS_MEASUREMENT, Rejection
from cloud_ingest._events import EVENTS_MEASUREMENT, STATUS_MEASUREMENT, event_time_ns
from cloud_ingest._metrics import IngestCounters, PromMetrics
from cloud_ingest._mqtt import RECONNECTED, MqttSource, Subscription
from cloud_ingest._pipeline import Accepted, Limits, Pipeline, Profile, build_profile
from cloud_ingest._service import IngestService, Source
from cloud_ingest._settings import IngestSection, IngestSettings
from cloud_ingest._sink_v2 import InfluxV2Sink
from cloud_ingest._sinks import InfluxV1Sink, Sink, is_retryable
from cloud_ingest._writer import Backoff, BatchWriter, WriterStoppedError
from cloud_ingest.errors import IngestConfigError, IngestError, SinkError

__all__ = [
    "DROPPED_TOPIC",
    "EVENTS_MEASUREMENT",
    "INGESTED_CHANNELS",
    "RECONNECTED",
    "REJECTS_MEASUREMENT",
    "STATUS_MEASUREMENT",
    "UPTIME_TOPIC",
    "Accepted",
    "Backoff",
    "Batch",
    "BatchBuilder",
    "BatchWriter",
    "BrokerDropWatch",
    "Delivery",
    "DeviceCounters",
    "Inbound",
    "InfluxV1Sink",
    "InfluxV2Sink",
    "IngestClient",
    "IngestConfigError",
    "IngestCounters",
    "IngestError",
    "IngestSection",
    "IngestService",
    "IngestSettings",
    "Limits",
    "MqttSource",
    "Pipeline",
    "Profile",
    "PromMetrics",
    "Rejection",
    "SeqTracker",
    "Sink",
    "SinkError",
    "Source",
    "Subscription",
    "WriterStoppedError",
    "build_profile",
    "build_service",
    "build_sink",
    "event_time_ns",
    "is_retryable",
    "limits_of",
    "load_fleet",
    "puback_frames",
    "subscriptions_of",
]
