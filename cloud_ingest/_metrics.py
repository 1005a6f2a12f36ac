"""Self-monitoring: cumulative counters, Prometheus metrics (own registry) and stats points."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Mapping
from typing import Final
from wsgiref.simple_server import WSGIServer

import numpy as np
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cloud_ingest._accounting import DeviceCounters
from cloud_ingest._deadletter import Rejection
from cloud_ingest._pipeline import Profile
from telemetry_core.errors import RejectReason
from telemetry_core.line_protocol import encode_point

log = structlog.get_logger()

LATENCY_SAMPLES: Final = 100_000
_NS_PER_MS: Final = 1_000_000


class IngestCounters:
    """Cumulative counts of this instance.

    ``received`` counts messages as the processor takes them into batches; the rest are
    counted by the writer once a batch is acknowledged, except ``abandoned``: messages of
    batches still unwritten when the ingester stopped (not acknowledged, so the broker
    delivers them again at the next start).
    """

    __slots__ = (
        "_latency_lock",
        "abandoned",
        "batch_ms",
        "dropped",
        "duplicates",
        "e2e_ms",
        "received",
        "redelivered",
        "rejected",
        "retries",
        "written",
    )

    def __init__(self) -> None:
        self.received = 0
        self.written = 0
        self.rejected = 0
        self.duplicates = 0
        self.redelivered = 0
        self.retries = 0
        self.dropped = 0
        self.abandoned = 0
        self.e2e_ms: collections.deque[int] = collections.deque(maxlen=LATENCY_SAMPLES)
        self.batch_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)
        self._latency_lock = threading.Lock()

    def add_latencies(self, e2e_ms: Iterable[int], batch_ms: float) -> None:
        """Record message latencies (timestamp to ack) and one batch latency (seal to ack)."""
        with self._latency_lock:
            self.e2e_ms.extend(e2e_ms)
            self.batch_ms.append(batch_ms)

    def percentiles(self) -> dict[str, float]:
        """p50 and p99 of the recent message and batch latencies, in milliseconds."""
        with self._latency_lock:
            e2e = np.fromiter(self.e2e_ms, dtype=np.float64, count=len(self.e2e_ms))
            batch = np.fromiter(self.batch_ms, dtype=np.float64, count=len(self.batch_ms))
        out: dict[str, float] = {}
        for name, values in (("e2e_latency_ms", e2e), ("batch_latency_ms", batch)):
            if values.size:
                p50, p99 = np.percentile(values, [50, 99])
                out[f"{name}_p50"] = float(p50)
                out[f"{name}_p99"] = float(p99)
        return out


class RejectLog:
    """Rejected messages in the log without flooding it: counts per reason, rate-limited.

    The first reject after a quiet spell is logged at once; later ones are counted and logged
    together (``messages_rejected``, a warning with ``counts`` per reason, ``total`` and one
    example) at most once every ``interval_s``. The dead letter keeps every record.
    """

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._counts: collections.Counter[str] = collections.Counter()
        self._example: tuple[str, str] = ("", "")
        self._last_s: float | None = None
        self.logged = 0

    def add(self, rejections: Iterable[Rejection], now_s: float) -> None:
        """Count ``rejections``; log if the interval since the last log has passed."""
        for rejection in rejections:
            self._counts[rejection.reason.value] += 1
            self._example = (rejection.topic[:200], rejection.detail[:200])
        self.flush(now_s)

    def flush(self, now_s: float, *, force: bool = False) -> None:
        """Log what was counted, if any, when the interval passed (or when ``force``)."""
        if not self._counts:
            return
        if not force and self._last_s is not None and now_s - self._last_s < self._interval_s:
            return
        total = sum(self._counts.values())
        topic, detail = self._example
        log.warning("messages_rejected", counts=dict(sorted(self._counts.items())),
                    total=total, example_topic=topic, example_detail=detail)  # fmt: skip
        self.logged += total
        self._counts.clear()
        self._last_s = now_s


class PromMetrics:
    """The Prometheus view of the counters, on a registry of our own (not the global one)."""

    def __init__(self) -> None:
        self._server: WSGIServer | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("xiuhua_ingest_received", "Messages received", registry=r)
        self.written = Counter(
            "xiuhua_ingest_written",
            "Messages stored (readings, events, statuses) and acknowledged",
            registry=r,
        )
        self.rejected = Counter(
            "xiuhua_ingest_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        self.retries = Counter("xiuhua_ingest_retries", "Database write retries", registry=r)
        self.duplicates = Counter("xiuhua_ingest_duplicates", "Duplicate messages", registry=r)
        self.dropped = Counter("xiuhua_ingest_dropped", "Records lost to a bound", registry=r)
        self.broker_dropped = Counter(
            "xiuhua_ingest_broker_dropped",
            "Increases of the broker's $SYS drop counter seen by this instance", registry=r,
        )  # fmt: skip
        self.broker_dropped_reported = Gauge(
            "xiuhua_ingest_broker_dropped_reported",
            "The broker's own drop counter (all clients, since the broker started)", registry=r,
        )  # fmt: skip
        self.batch_latency = Histogram(
            "xiuhua_ingest_batch_latency_seconds", "Batch sealed to database ack", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self.backlog = Gauge(
            "xiuhua_ingest_backlog", "Messages held, not yet acknowledged", registry=r
        )
        self.e2e_p50 = Gauge(
            "xiuhua_ingest_e2e_latency_p50_seconds", "Message ts to ack", registry=r
        )
        self.e2e_p99 = Gauge(
            "xiuhua_ingest_e2e_latency_p99_seconds", "Message ts to ack", registry=r
        )
        for reason in RejectReason:
            self.rejected.labels(reason=reason.value)

    def broker_dropped_seen(self, increase: int, broker_total: int) -> None:
        """Record an increase of the broker's drop counter (a ``BrokerDropWatch`` callback)."""
        self.broker_dropped.inc(increase)
        self.broker_dropped_reported.set(broker_total)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread until :meth:`close`."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        """Stop serving ``/metrics`` (a no-op if it was never served)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def device_stats_lines(
    items: Iterable[tuple[str, DeviceCounters]],
    profiles: Mapping[str, Profile],
    instance: str,
    time_ns: int,
) -> list[str]:
    """``ingest_device_stats`` points of devices whose counters changed."""
    lines = []
    for device_id, c in items:
        profile = profiles.get(device_id)
        if profile is None:
            continue
        device = profile.device
        tags = {"device_id": device_id, "district": device.district,
                "kind": device.kind.value, "instance": instance}  # fmt: skip
        fields = {"received": c.received, "gaps": max(c.gaps, 0), "duplicates": c.duplicates,
                  "out_of_order": c.out_of_order, "rejected": c.rejected}  # fmt: skip
        lines.append(encode_point("ingest_device_stats", tags, fields, time_ns))
    return lines


def ingest_stats_line(
    counters: IngestCounters,
    backlog: int,
    instance: str,
    time_ns: int,
    broker_dropped: tuple[int, int] | None = None,
) -> str:
    """The ``ingest_stats`` point of this instance.

    ``broker_dropped`` is ``(increase since the previous point, broker's total)`` when the
    broker's drop counter is watched.
    """
    fields: dict[str, float | int] = {
        "received": counters.received,
        "written": counters.written,
        "rejected": counters.rejected,
        "duplicates": counters.duplicates,
        "redelivered": counters.redelivered,
        "retries": counters.retries,
        "dropped": counters.dropped,
        "backlog": backlog,
    }
    if broker_dropped is not None:
        fields["broker_dropped"], fields["broker_dropped_total"] = broker_dropped
    fields.update(counters.percentiles())
    return encode_point("ingest_stats", {"instance": instance}, fields, time_ns)


def ms_to_ns(ms: int) -> int:
    """Milliseconds to nanoseconds."""
    return ms * _NS_PER_MS
