"""The ingester: a processor thread builds batches, a writer thread writes and acknowledges them.

    MQTT network thread ──inbox──▶ processor ──bounded queue──▶ writer ──▶ sink
          ▲                                                       │
          └──────────────── acks and dead letters ◀───────────────┘

Both threads are :class:`telemetry_core.threads.GuardedThread`: one that dies of an exception
ends the process (``thread_died``, exit code 70) for a supervisor to restart, rather than
leave a live process that stores nothing. A message that makes the pipeline fail is not such a
death: it becomes an ``internal_error`` dead letter (``_batch.py``).

A message is acknowledged only after the sink accepted the batch holding it (or its dead-letter
record). Memory is bounded by the broker: it sends at most Receive Maximum unacknowledged
messages, and the queue between the threads holds at most ``pending_batches`` batches.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Protocol

import structlog

from cloud_ingest._batch import Batch, BatchBuilder, Inbound, topic_of
from cloud_ingest._broker import BrokerDropWatch
from cloud_ingest._metrics import (
    IngestCounters,
    PromMetrics,
    RejectLog,
    device_stats_lines,
    ingest_stats_line,
)
from cloud_ingest._mqtt import RECONNECTED
from cloud_ingest._pipeline import Pipeline
from cloud_ingest._writer import BatchWriter, WriterStoppedError
from telemetry_core.clock import Clock
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.threads import DeathHandler, guarded_thread

log = structlog.get_logger()


class Source(Protocol):
    """The MQTT side as the service sees it (``MqttSource`` in production, a fake in tests)."""

    inbox: Any
    wake: threading.Event
    subscribed: threading.Event

    def start(self) -> None:
        """Connect and start delivering into ``inbox``."""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, keeping the session."""

    def ack_later(self, generation: int, mids: list[int]) -> None:
        """Acknowledge the QoS 1 messages ``mids`` of connection ``generation``."""

    def publish_later(self, topic: str, payload: bytes) -> None:
        """Publish a dead letter."""


class IngestService:
    """Wires source, pipeline, writer and monitoring; ``start()``/``stop()`` or step by hand."""

    def __init__(
        self,
        *,
        source: Source,
        pipeline: Pipeline,
        writer: BatchWriter,
        clock: Clock,
        instance: str,
        batch_size: int,
        batch_interval_s: float,
        pending_batches: int,
        stats_interval_s: float,
        deadletter_topic: str,
        metrics: PromMetrics | None = None,
        broker_drops: BrokerDropWatch | None = None,
        stop_event: threading.Event | None = None,
        on_thread_death: DeathHandler | None = None,
    ) -> None:
        self.counters = IngestCounters()
        self._reject_log = RejectLog(stats_interval_s)
        self._source = source
        self._pipeline = pipeline
        self._builder = BatchBuilder(pipeline, instance)
        self._writer = writer
        self._clock = clock
        self._instance = instance
        self._batch_size = batch_size
        self._interval_s = batch_interval_s
        self._stats_interval_s = stats_interval_s
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics or PromMetrics()
        self._broker_drops = broker_drops
        self._batches: queue.Queue[Batch] = queue.Queue(maxsize=pending_batches)
        self._generation = 0
        self._last_stats_s = clock.monotonic_s()
        # Shared with the writer's retry sleep, so stopping cuts a retry wait short.
        self._stop = stop_event or threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_thread_death = on_thread_death

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the source, the processor and the writer threads."""
        for name, target in (
            ("ingest-writer", self._write_loop),
            ("ingest-processor", self._process_loop),
        ):
            self._threads.append(guarded_thread(target, name=name, on_death=self._on_thread_death))
        self._source.start()
        log.info("ingest_started", instance=self._instance)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop taking messages, finish the batch being written, disconnect keeping the session."""
        self._stop.set()
        self._source.wake.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._source.stop()
        self._writer.close()
        self._metrics.close()
        self.counters.abandoned += sum(len(b.messages) for b in list(self._batches.queue))
        self._reject_log.flush(self._clock.monotonic_s(), force=True)
        log.info("ingest_stopped", instance=self._instance, **self.summary())

    @property
    def write_retries(self) -> int:
        """Database write retries so far, including those of a write still retrying."""
        return self._writer.retries

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Wait until the broker confirmed our subscription; False after ``timeout_s``."""
        return self._source.subscribed.wait(timeout_s)

    def summary(self) -> dict[str, int | float]:
        """Counters and latency percentiles, for logs and benches."""
        c = self.counters
        broker = self._broker_drops.seen if self._broker_drops else 0
        # Retries as the writer counts them: a write still retrying (or abandoned) counts too.
        return {"received": c.received, "written": c.written, "rejected": c.rejected,
                "duplicates": c.duplicates, "retries": self._writer.retries,
                "dropped": c.dropped, "abandoned": c.abandoned,
                "broker_dropped": broker, **c.percentiles()}  # fmt: skip

    @property
    def backlog(self) -> int:
        """Messages received and not yet acknowledged (approximate; read across threads)."""
        queued = sum(len(b.messages) for b in list(self._batches.queue))
        return len(self._source.inbox) + queued

    # -- processor -------------------------------------------------------------------------

    def _process_loop(self) -> None:
        while not self._stop.is_set():
            self._source.wake.wait(self._interval_s)
            self._source.wake.clear()
            self.process_pending()
            self.maybe_emit_stats()

    def process_pending(self) -> int:
        """Drain the inbox into batches and queue them; returns how many batches were queued."""
        inbox, queued = self._source.inbox, 0
        messages: list[Inbound] = []
        while inbox and not self._stop.is_set():
            item = inbox.popleft()
            if item is RECONNECTED:
                queued += self._queue_batch(messages)
                messages, self._generation = [], self._generation + 1
                continue
            messages.append(item)
            if len(messages) >= self._batch_size:
                queued += self._queue_batch(messages)
                messages = []
        return queued + self._queue_batch(messages)

    def _queue_batch(self, messages: list[Inbound]) -> int:
        if not messages:
            return 0
        batch = self._builder.build(messages, self._generation, int(self._clock.now_s() * 1000))
        batch.sealed_s = self._clock.monotonic_s()
        self.counters.received += len(messages)
        self._metrics.received.inc(len(messages))
        self._put(batch)
        return 1

    def _put(self, batch: Batch) -> None:
        while not self._stop.is_set():
            try:
                self._batches.put(batch, timeout=0.5)
            except queue.Full:
                continue
            return

    def maybe_emit_stats(self, force: bool = False) -> bool:
        """Queue ``ingest_stats`` and ``ingest_device_stats`` points if the interval passed."""
        now_s = self._clock.monotonic_s()
        if not force and now_s - self._last_stats_s < self._stats_interval_s:
            return False
        self._last_stats_s = now_s
        time_ns = int(self._clock.now_s() * 1e9)
        lines = device_stats_lines(
            self._pipeline.tracker.take_dirty(), self._pipeline.profiles, self._instance, time_ns
        )
        drops = self._broker_drops
        broker = (drops.take_delta(), drops.total) if drops is not None else None
        lines.append(
            ingest_stats_line(self.counters, self.backlog, self._instance, time_ns, broker)
        )
        self._refresh_gauges()
        stats = Batch(generation=self._generation, messages=[], received_ms=time_ns // 1_000_000)
        stats.lines, stats.origins = lines, [-1] * len(lines)
        self._put(stats)
        return True

    def _refresh_gauges(self) -> None:
        self._metrics.backlog.set(self.backlog)
        p = self.counters.percentiles()
        if "e2e_latency_ms_p50" in p:
            self._metrics.e2e_p50.set(p["e2e_latency_ms_p50"] / 1000)
            self._metrics.e2e_p99.set(p["e2e_latency_ms_p99"] / 1000)

    # -- writer ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._batches.empty()):
            try:
                batch = self._batches.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.write_batch(batch)
            except WriterStoppedError:
                self.counters.abandoned += len(batch.messages)
                log.info("ingest_abandoned_batch", messages=len(batch.messages),
                         hint="not acknowledged: the broker delivers them again")  # fmt: skip
                return

    def write_batch(self, batch: Batch) -> None:
        """Write a batch (isolating refused points), then acknowledge and publish dead letters."""
        retries_before = self._writer.retries
        refused = self._writer.write(batch.lines)
        if refused:
            self._dead_letter_refused(batch, refused)
        self._acknowledge(batch)
        # Only refused readings make fewer written; a refused own point (stats, a reject)
        # is counted as dropped, and subtracting it would make the written count go down.
        readings_refused = sum(1 for i in refused if batch.origins[i] >= 0)
        self._account(batch, self._writer.retries - retries_before, readings_refused)

    def _dead_letter_refused(self, batch: Batch, refused: list[int]) -> None:
        extra = Batch(generation=batch.generation, messages=[], received_ms=batch.received_ms)
        for index in refused:
            origin = batch.origins[index]
            if origin < 0:
                self.counters.dropped += 1
                self._metrics.dropped.inc()
                log.error("own_point_refused", line=batch.lines[index][:300])
                continue
            msg = batch.messages[origin]
            exc = RejectedMessage(RejectReason.WRITE_REJECTED, "the database refused the point")
            self._builder.add_rejection(
                extra, self._builder.rejection(topic_of(msg), msg.payload, exc, batch.received_ms)
            )
        self._write_dead_letters(extra)
        batch.rejections.extend(extra.rejections)

    def _write_dead_letters(self, extra: Batch) -> None:
        lost = self._writer.write(extra.lines)
        if lost:
            self.counters.dropped += len(lost)
            self._metrics.dropped.inc(len(lost))
            log.error("dead_letter_points_refused", count=len(lost))

    def _acknowledge(self, batch: Batch) -> None:
        if batch.messages:
            # QoS 0 needs no ack; QoS 2 never comes (we subscribe at QoS 1, the broker sends
            # at most the subscription's QoS).
            mids = [m.mid for m in batch.messages if m.qos == 1]
            self._source.ack_later(batch.generation, mids)
        for rejection in batch.rejections:
            self._source.publish_later(self._deadletter_topic, rejection.to_json(self._instance))

    def _account(self, batch: Batch, retries: int, refused: int) -> None:
        c, m = self.counters, self._metrics
        ack_ms = int(self._clock.now_s() * 1000)
        written = batch.accepted - refused
        c.written += written
        c.rejected += len(batch.rejections)
        c.duplicates += batch.duplicates
        c.redelivered += batch.redelivered
        c.retries += retries
        if batch.messages:
            batch_ms = (self._clock.monotonic_s() - batch.sealed_s) * 1000
            c.add_latencies([ack_ms - ts for ts in batch.ts_ms], batch_ms)
            m.batch_latency.observe(batch_ms / 1000)
        m.written.inc(written)
        m.duplicates.inc(batch.duplicates)
        m.retries.inc(retries)
        for rejection in batch.rejections:
            m.rejected.labels(reason=rejection.reason.value).inc()
        self._reject_log.add(batch.rejections, self._clock.monotonic_s())
