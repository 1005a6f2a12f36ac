"""Self-monitoring of the alerting service: counters, Prometheus metrics, ``alerting_stats``."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from alerting._forecast import ForecastCounts
from telemetry_core.alerting_wire import AlertingStats
from telemetry_core.errors import RejectReason

INTERNAL_ERROR = "internal_error"
"""The dead-letter reason of a message whose evaluation raised (the engine's own bug or a
state the engine could not handle): that one message is set aside, the stream goes on."""


class AlertingCounters:
    """Cumulative counts of this instance; written by the processor thread only."""

    __slots__ = (
        "checkpoints",
        "evaluated",
        "incidents",
        "lag_ms",
        "received",
        "rejected",
        "state_bytes",
        "transitions",
    )

    def __init__(self) -> None:
        self.received = 0
        self.evaluated = 0
        self.transitions = 0
        self.incidents = 0
        self.rejected = 0
        self.checkpoints = 0
        self.lag_ms = 0
        self.state_bytes = 0

    def stats(
        self, instance: str, ts_ms: int, *, backlog: int, unconfirmed: int, devices: int
    ) -> AlertingStats:
        """The ``alerting_stats`` message of these counters."""
        return AlertingStats(
            v=1, instance=instance, ts=ts_ms, received=self.received, evaluated=self.evaluated,
            transitions=self.transitions, incidents=self.incidents, rejected=self.rejected,
            checkpoints=self.checkpoints, backlog=backlog, unconfirmed=unconfirmed,
            lag_ms=self.lag_ms, state_bytes=self.state_bytes, devices=devices,
        )  # fmt: skip


class PromMetrics:
    """The Prometheus view, on a registry of our own (not the global one)."""

    def __init__(self) -> None:
        self._server: WSGIServer | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("xiuhua_alerting_received", "Messages received", registry=r)
        self.evaluated = Counter(
            "xiuhua_alerting_evaluated", "Messages evaluated by the engine", registry=r
        )
        self.transitions = Counter(
            "xiuhua_alerting_transitions", "Alert transitions published, by tier reached",
            ["tier"], registry=r,
        )  # fmt: skip
        self.incidents = Counter(
            "xiuhua_alerting_incident_updates", "Incident updates published", registry=r
        )
        self.rejected = Counter(
            "xiuhua_alerting_rejected", "Messages dead-lettered, by reason", ["reason"], registry=r
        )
        self.checkpoints = Counter(
            "xiuhua_alerting_checkpoints", "Checkpoints written and acknowledged", registry=r
        )
        self.checkpoint_seconds = Histogram(
            "xiuhua_alerting_checkpoint_seconds", "Seal to acks sent (write and PUBACK wait)",
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.store_errors = Counter(
            "xiuhua_alerting_store_errors", "Checkpoint writes that failed (retried)", registry=r
        )
        self.backlog = Gauge(
            "xiuhua_alerting_backlog", "Messages held, not yet acknowledged", registry=r
        )
        self.unconfirmed = Gauge(
            "xiuhua_alerting_unconfirmed", "Publishes awaiting the broker's PUBACK", registry=r
        )
        self.lag = Gauge(
            "xiuhua_alerting_lag_seconds", "Wall time minus the event time evaluated", registry=r
        )
        self.snapshot_seconds = Histogram(
            "xiuhua_alerting_snapshot_seconds", "Engine snapshots: evaluation stops meanwhile",
            registry=r, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self.state_bytes = Gauge(
            "xiuhua_alerting_state_bytes", "Size of the last checkpoint", registry=r
        )
        self.forecast_runs = Counter(
            "xiuhua_alerting_forecast_runs", "Forecast issues whose SWMM runs succeeded",
            registry=r,
        )  # fmt: skip
        self.forecast_failures = Counter(
            "xiuhua_alerting_forecast_failures",
            "Forecast issues that failed (no forecast stood until the next)", registry=r,
        )  # fmt: skip
        self.forecast_seconds = Counter(
            "xiuhua_alerting_forecast_seconds", "Wall time the forecast thread spent on issues",
            registry=r,
        )  # fmt: skip
        self.forecast_wait_seconds = Counter(
            "xiuhua_alerting_forecast_wait_seconds",
            "Wall time evaluation waited for a forecast at its effect time", registry=r,
        )  # fmt: skip
        self._forecast_seen = ForecastCounts(0, 0, 0.0, 0.0)
        self.late_readings = Counter(
            "xiuhua_alerting_late_readings",
            "Readings not after their device's newest evaluated one (redeliveries, a backfill "
            "behind live readings): stored by the ingester, unevaluated here", registry=r,
        )  # fmt: skip
        self._late_seen = 0
        for reason in (*RejectReason, INTERNAL_ERROR):
            self.rejected.labels(reason=str(reason))
        for tier in ("none", "blue", "yellow", "orange", "red"):
            self.transitions.labels(tier=tier)

    def late(self, now: int) -> None:
        """Bring the late-readings counter up to the engine's cumulative count."""
        if now > self._late_seen:
            self.late_readings.inc(now - self._late_seen)
        self._late_seen = now

    def forecast(self, now: ForecastCounts) -> None:
        """Bring the forecast counters up to the forecaster's cumulative figures."""
        seen = self._forecast_seen
        for counter, before, after in zip(
            (self.forecast_runs, self.forecast_failures, self.forecast_seconds,
             self.forecast_wait_seconds), seen, now, strict=True,
        ):  # fmt: skip
            if after > before:
                counter.inc(after - before)
        self._forecast_seen = now

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread until :meth:`close`."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        """Stop serving ``/metrics`` (a no-op if it was never served)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
