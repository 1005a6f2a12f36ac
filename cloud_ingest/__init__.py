"""Cloud ingester: MQTT telemetry into InfluxDB, at least once, with reasons for every refusal.

Build one with :func:`build_service` from :class:`IngestSettings` and a registry, then
``start()`` and ``stop()`` it; ``xiuhua ingest --config FILE`` does exactly that.
"""

from cloud_ingest._accounting import DeviceCounters, SeqTracker
from cloud_ingest._app import build_service, build_sink, limits_of, load_fleet
from cloud_ingest._batch import Batch, BatchBuilder, Inbound
from cloud_ingest._client import Delivery, IngestClient, puback_frames
from cloud_ingest._deadletter import REJECTS_MEASUREMENT, Rejection
from cloud_ingest._metrics import IngestCounters, PromMetrics
from cloud_ingest._mqtt import RECONNECTED, MqttSource
from cloud_ingest._pipeline import Accepted, Limits, Pipeline, Profile, build_profile
from cloud_ingest._service import IngestService, Source
from cloud_ingest._settings import IngestSection, IngestSettings
from cloud_ingest._sink_v2 import InfluxV2Sink
from cloud_ingest._sinks import InfluxV1Sink, Sink, is_retryable
from cloud_ingest._writer import Backoff, BatchWriter, WriterStoppedError
from cloud_ingest.errors import IngestConfigError, IngestError, SinkError

__all__ = [
    "RECONNECTED",
    "REJECTS_MEASUREMENT",
    "Accepted",
    "Backoff",
    "Batch",
    "BatchBuilder",
    "BatchWriter",
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
    "WriterStoppedError",
    "build_profile",
    "build_service",
    "build_sink",
    "is_retryable",
    "limits_of",
    "load_fleet",
    "puback_frames",
]
