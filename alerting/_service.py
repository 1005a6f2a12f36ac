"""The alerting service: a processor thread evaluates, a checkpoint thread makes it durable.

    MQTT network thread ──inbox──▶ processor ── engine ──▶ transitions published at once
          ▲                           │ every checkpoint_interval_s: engine.delta(), seal
          │                           ▼
          └──── acks ◀──── checkpoint thread: wait for PUBACKs; store.checkpoint(); ack

A message is acknowledged only once the state change it caused is in the store and every
transition published before its checkpoint was acknowledged by the broker (``_checkpoint``).
A message that cannot be handled, whatever the reason, is dead-lettered and acknowledged with
the others; so is a transition the store refused for good (``store_refused``). A worker
thread that dies (the checkpoint thread does on a permanent store error it cannot set aside)
is reported by :meth:`AlertingService.dead_thread`; the command then exits non-zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import msgspec
import structlog

from alerting._catchup import EventClock
from alerting._checkpoint import AckLedger, Checkpointer, Sealed, StateStore
from alerting._consumer import RECONNECTED, Backoff, PublishLedger
from alerting._consumer_deadletter import dead_letter, topic_text
from alerting._consumer_route import Router
from alerting._hygiene import Silence
from alerting._metrics import INTERNAL_ERROR, AlertingCounters, PromMetrics
from telemetry_core.alerting_wire import alerting_stats_topic
from telemetry_core.clock import Clock
from telemetry_core.errors import RejectedMessage
from telemetry_core.schema import AlertTransition
from telemetry_core.threads import DeathHandler, exit_process, guarded_thread
from telemetry_core.topics import alert_topic, incident_topic

log = structlog.get_logger()

_JSON: Final = msgspec.json.Encoder()
_BATCH: Final = 2000
"""Messages evaluated between two looks at the checkpoint, tick and stats clocks."""
_SNAPSHOT_BUDGET: Final = 10.0
"""Checkpoints are at least this many snapshot durations apart (see ``maybe_checkpoint``)."""
_SEAL_DEVICES: Final = 256
"""Changed devices left for the seal to encode; the others are encoded between batches
(``encode_ahead``), so a seal stops evaluation for a few milliseconds, not for every device
changed since the last one."""
_AHEAD_MIN: Final = 64
_AHEAD_MAX: Final = 256
"""Devices encoded ahead after a batch: as many as it held messages, within these bounds (256
devices take about 3 ms, so encoding ahead never holds up a reading for long itself)."""
STORE_REFUSED: Final = "store_refused"
"""Dead-letter reason of a transition the state store refused for good."""
_POLL_S: Final = 0.05
"""Longest wait for a message: bounds how late ticks, checkpoints and stats run."""


class Source(Protocol):
    """The MQTT side as the service sees it (``MqttConsumer``, or a fake in unit tests)."""

    inbox: Any
    wake: threading.Event
    subscribed: threading.Event
    ledger: PublishLedger

    def start(self) -> None:
        """Connect and start delivering into ``inbox``."""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, keeping the session."""

    def ack_later(self, generation: int, mids: list[int]) -> None:
        """Acknowledge ``mids`` of connection ``generation``."""

    def publish_later(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1; numbered in call order."""

    @property
    def publishes_queued(self) -> int:
        """The number the next publish will get."""
        ...


class _Acker:
    """The checkpointer's view of the source: acks, and the ledger of publishes."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def ack_later(self, generation: int, mids: list[int]) -> None:
        self._source.ack_later(generation, mids)

    def confirmed_below(self, seq: int) -> bool:
        return self._source.ledger.confirmed_below(seq)


class AlertingService:
    """Wires source, router (engine), checkpointer and monitoring; ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        source: Source,
        router: Router,
        store: StateStore,
        clock: Clock,
        instance: str,
        checkpoint_interval_s: float,
        tick_interval_s: float,
        stats_interval_s: float,
        deadletter_topic: str,
        max_unconfirmed: int,
        store_backoff: Backoff,
        devices: int = 0,
        catchup_quiet_s: float = 10.0,
        catchup_lateness_s: float = 0.0,
        metrics: PromMetrics | None = None,
        on_thread_death: DeathHandler | None = None,
        silences: Callable[[], Sequence[Silence]] | None = None,
        silence_refresh_s: float = 5.0,
    ) -> None:
        self.counters = AlertingCounters()
        self._source = source
        self._router = router
        self._clock = clock
        self._instance = instance
        self._cp_interval_s = self._cp_gap_s = checkpoint_interval_s
        self._tick_interval_s = tick_interval_s
        self._stats_interval_s = stats_interval_s
        self._deadletter_topic = deadletter_topic
        self._max_unconfirmed = max_unconfirmed
        self._devices = devices
        self._metrics = metrics or PromMetrics()
        self._ledger = AckLedger()
        self._stop = threading.Event()
        self._cp_stop = threading.Event()
        self._checkpointer = Checkpointer(
            store, _Acker(source), store_backoff, confirmed=source.ledger.confirmed,
            stop=self._cp_stop, observe=self._observed, on_error=self._metrics.store_errors.inc,
        )  # fmt: skip
        self._generation = 0
        start = clock.monotonic_s()
        self._last_cp_s = self._last_tick_s = self._last_stats_s = start
        self._event_clock = EventClock(
            catchup_quiet_s, heard_at_s=start, lateness_s=catchup_lateness_s
        )
        self._threads: list[threading.Thread] = []
        self._on_thread_death = on_thread_death or exit_process
        self.failed: str | None = None
        self.on_transition: Callable[[AlertTransition], None] | None = None
        """Called for each transition published (benchmarks and tests)."""
        self._read_silences = silences
        self._silence_refresh_s = silence_refresh_s
        self._fresh_silences: list[Silence] | None = None
        """Silences read by the refresh thread, for the processor to take (one reference)."""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the checkpoint and processor threads, then the MQTT source."""
        for name, target in (
            ("alerting-checkpoint", self._checkpointer.run),
            ("alerting-processor", self._process_loop),
        ):
            self._threads.append(guarded_thread(target, name=name, on_death=self._died))
        if self._read_silences is not None:
            self._threads.append(guarded_thread(
                self._refresh_silences, name="alerting-silences", on_death=self._died
            ))  # fmt: skip
        self._source.start()
        log.info("alerting_started", instance=self._instance)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop taking messages, checkpoint and ack what was done; the session is kept."""
        self._stop.set()
        self._source.wake.set()
        self._threads[1].join(timeout_s)  # the processor seals a last checkpoint as it ends
        self._cp_stop.set()
        self._threads[0].join(timeout_s)
        for thread in self._threads[2:]:
            thread.join(timeout_s)
        self._source.stop()
        self._metrics.close()
        self._router.engine.close()
        log.info("alerting_stopped", instance=self._instance, **self.summary())

    @property
    def silences(self) -> Sequence[Silence]:
        """The silences the engine applies now (read again every ``silence_refresh_s``)."""
        return tuple(self._router.engine.silences)

    @property
    def checkpointer(self) -> Checkpointer:
        """The checkpointer (its thread runs :meth:`Checkpointer.run`; tests drive it by hand)."""
        return self._checkpointer

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Wait until the broker confirmed our subscriptions; False after ``timeout_s``."""
        return self._source.subscribed.wait(timeout_s)

    def dead_thread(self) -> str | None:
        """The name of a worker thread that died, if one did."""
        if self.failed is not None:
            return self.failed
        thread = getattr(self._source, "thread", None)
        if isinstance(thread, threading.Thread) and not thread.is_alive():
            return None if self._stop.is_set() else thread.name
        return None

    def summary(self) -> dict[str, int]:
        """Counters, for logs and benches."""
        c = self.counters
        return {"received": c.received, "evaluated": c.evaluated, "transitions": c.transitions,
                "incidents": c.incidents, "rejected": c.rejected,
                "checkpoints": c.checkpoints}  # fmt: skip

    @property
    def backlog(self) -> int:
        """Messages received and not yet acknowledged (approximate; read across threads)."""
        return len(self._source.inbox) + self._ledger.messages

    def _died(self, name: str, exc: BaseException) -> None:
        """A worker thread died: stop the others, then the handler (by default: exit 70)."""
        self.failed = name
        self._stop.set()
        self._cp_stop.set()
        self._on_thread_death(name, exc)

    # -- processor -------------------------------------------------------------------------

    def _process_loop(self) -> None:
        while not self._stop.is_set():
            if not self._source.inbox:
                self._source.wake.wait(_POLL_S)
            self._source.wake.clear()
            self.step()
        self._final_checkpoint()

    def step(self) -> None:
        """One round: messages, tick, incidents, checkpoint, stats (the processor thread)."""
        self.take_silences()
        handled = self.process_pending()
        self.encode_ahead(handled)
        self.maybe_tick()
        self._publish_incidents()
        self.maybe_checkpoint()
        self._dead_letter_refused()
        self.maybe_stats()

    def process_pending(self) -> int:
        """Evaluate up to a batch of what waits in the inbox; how many messages were handled.

        A batch at most, so that checkpoints, ticks and stats keep their pace under load.
        """
        inbox, ledger, handled = self._source.inbox, self._source.ledger, 0
        now_ms = int(self._clock.now_s() * 1000)  # once a batch: it only bounds ts_future
        evaluated = self.counters.evaluated
        while inbox and handled < _BATCH and not self._stop.is_set():
            if ledger.unconfirmed >= self._max_unconfirmed:
                break  # the broker is behind on PUBACKs: let it catch up before publishing more
            item = inbox.popleft()
            if item is RECONNECTED:
                self._generation += 1
                self._event_clock.heard(self._clock.monotonic_s())  # its queue comes next
                continue
            self._handle(item, now_ms)
            handled += 1
        self.counters.received += handled
        self._metrics.received.inc(handled)
        self._metrics.evaluated.inc(self.counters.evaluated - evaluated)
        if handled:
            self._event_clock.heard(self._clock.monotonic_s(), self._router.last_ts_ms)
        if handled and self._router.last_ts_ms:
            self.counters.lag_ms = int(self._clock.now_s() * 1000) - self._router.last_ts_ms
        return handled

    def encode_ahead(self, handled: int) -> None:
        """Encode changed devices ahead of the next seal: as many as the batch just handled
        (within ``_AHEAD_MIN`` and ``_AHEAD_MAX``), leaving ``_SEAL_DEVICES`` for the seal.

        The seal then stops evaluation for a few milliseconds instead of for every device
        changed since the last one (10,000 drain nodes at 1 Hz: 110 ms), so checkpoints can stay
        ``checkpoint_interval_s`` apart under load. That keeps the window of unacknowledged
        messages short, and with it what the broker holds and saves. A device changed again
        before the seal is encoded again there."""
        limit = min(max(handled, _AHEAD_MIN), _AHEAD_MAX)
        self._router.engine.encode_pending(limit, keep=_SEAL_DEVICES)

    def _handle(self, msg: Any, now_ms: int) -> None:
        topic = topic_text(msg)
        try:
            transitions = self._router.handle(topic, msg.payload, now_ms)
        except RejectedMessage as exc:
            self._dead_letter(topic, msg.payload, exc.reason.value, exc.detail, now_ms)
        except Exception as exc:  # noqa: BLE001 - whatever a message does, only it is set aside
            log.warning("message_failed", topic=topic[:256], error_type=type(exc).__name__,
                        error=str(exc)[:300])  # fmt: skip
            detail = f"{type(exc).__name__}: {exc}"
            self._dead_letter(topic, msg.payload, INTERNAL_ERROR, detail, now_ms)
        else:
            self.counters.evaluated += 1
            if transitions:
                self._publish_transitions(transitions)
        self._ledger.note_message(self._generation, msg.mid, msg.qos)

    def _dead_letter(
        self, topic: str, payload: bytes, reason: str, detail: str, now_ms: int
    ) -> None:
        self.counters.rejected += 1
        self._metrics.rejected.labels(reason=reason).inc()
        device_id = topic.split("/")[4] if topic.count("/") == 5 else None
        record = dead_letter(
            topic, payload, reason=reason, detail=detail, received_ms=now_ms,
            instance=self._instance, device_id=device_id,
        )  # fmt: skip
        self._source.publish_later(self._deadletter_topic, record)

    def _dead_letter_refused(self) -> None:
        """Transitions the store refused for good (published already; not in its alert table)."""
        refused = self._checkpointer.refused
        now_ms = int(self._clock.now_s() * 1000)
        while refused:
            transition, why = refused.popleft()
            topic = alert_topic(transition.district, transition.device_id)
            self._dead_letter(topic, _JSON.encode(transition), STORE_REFUSED, why, now_ms)

    def _publish_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        for transition in transitions:
            self._source.publish_later(
                alert_topic(transition.district, transition.device_id), _JSON.encode(transition)
            )
            self._metrics.transitions.labels(tier=transition.tier_to).inc()
            if self.on_transition is not None:
                self.on_transition(transition)
        self.counters.transitions += len(transitions)
        self._ledger.note_transitions(transitions)

    def _publish_incidents(self) -> None:
        incidents = self._router.engine.incidents_changed()
        for incident in incidents:
            self._source.publish_later(
                incident_topic(incident.district, incident.id), _JSON.encode(incident)
            )
        self.counters.incidents += len(incidents)
        self._metrics.incidents.inc(len(incidents))

    def take_silences(self) -> None:
        """Swap in the silences the refresh thread read last, if it read new ones."""
        fresh, self._fresh_silences = self._fresh_silences, None
        if fresh is not None and fresh != self._router.engine.silences:
            log.info("silences_updated", silences=len(fresh))
            self._router.engine.silences = fresh

    def refresh_silences_once(self) -> bool:
        """Read the silences from the store for the processor to take; False if it failed.

        Silences are added and expired by operators (``xiuhua alerting silence``) in the same
        store while the service runs; a failed read keeps the silences in force and is retried.
        """
        if self._read_silences is None:
            return False
        try:
            self._fresh_silences = list(self._read_silences())
        except Exception as exc:  # noqa: BLE001 - a store that is down now is read again later
            log.warning("silences_refresh_failed", error=str(exc),
                        retry_in_s=self._silence_refresh_s)  # fmt: skip
            return False
        self._source.wake.set()
        return True

    def _refresh_silences(self) -> None:
        while not self._stop.wait(self._silence_refresh_s):
            self.refresh_silences_once()

    def maybe_tick(self, force: bool = False) -> None:
        """Tick the engine if the interval passed (silent devices, reminders), at wall time
        once caught up and at the event time read so far before (``_catchup``)."""
        now_s = self._clock.monotonic_s()
        if not force and now_s - self._last_tick_s < self._tick_interval_s:
            return
        self._last_tick_s = now_s
        settled = not self._source.inbox and not self._ledger.dirty and not self._checkpointer.busy
        at_s = self._event_clock.tick_at(
            self._clock.now_s(), now_s, subscribed=self._source.subscribed.is_set(),
            settled=settled,
        )  # fmt: skip
        if at_s is None:
            return
        transitions = self._router.engine.tick(at_s)
        if transitions:
            self._publish_transitions(transitions)

    def maybe_checkpoint(self, force: bool = False) -> bool:
        """Seal and hand over a checkpoint if the interval passed and the last one is done.

        The interval is ``checkpoint_interval_s`` or :data:`_SNAPSHOT_BUDGET` times what the
        last seal cost the processor (the delta, during which evaluation stops), whichever is
        longer: at most a tenth of the processor's time goes to seals. Devices changed since the
        last seal are mostly encoded ahead of it (``encode_ahead``), so a seal stays short.
        """
        now_s = self._clock.monotonic_s()
        if not force and now_s - self._last_cp_s < self._cp_gap_s:
            return False
        if not self._ledger.dirty or self._checkpointer.busy:
            return False  # nothing new, or keep accumulating while the last one is written
        self._last_cp_s = now_s
        engine = self._router.engine
        delta = engine.delta()
        took_s = self._clock.monotonic_s() - now_s
        self._metrics.snapshot_seconds.observe(took_s)
        self._cp_gap_s = max(self._cp_interval_s, _SNAPSHOT_BUDGET * took_s)
        sealed = self._ledger.seal(delta, self._source.publishes_queued, now_s)
        self.counters.state_bytes = engine.state_bytes
        if not self._checkpointer.submit(sealed):
            self._ledger.restore(sealed)
            return False
        return True

    def _final_checkpoint(self, timeout_s: float = 10.0) -> None:
        deadline = self._clock.monotonic_s() + timeout_s
        self._publish_incidents()
        while self._ledger.dirty and self._clock.monotonic_s() < deadline:
            if self.maybe_checkpoint(force=True):
                return
            self._cp_stop.wait(0.02)

    def _observed(self, _sealed: Sealed, seconds: float) -> None:
        # Runs in the checkpoint thread: counters read elsewhere only for stats.
        self.counters.checkpoints += 1
        self._metrics.checkpoints.inc()
        self._metrics.checkpoint_seconds.observe(seconds)

    def maybe_stats(self, force: bool = False) -> bool:
        """Publish ``alerting_stats`` and refresh the gauges if the interval passed."""
        now_s = self._clock.monotonic_s()
        if not force and now_s - self._last_stats_s < self._stats_interval_s:
            return False
        self._last_stats_s = now_s
        ledger = self._source.ledger
        stats = self.counters.stats(
            self._instance, int(self._clock.now_s() * 1000), backlog=self.backlog,
            unconfirmed=ledger.unconfirmed, devices=self._devices,
        )  # fmt: skip
        self._source.publish_later(alerting_stats_topic(self._instance), _JSON.encode(stats))
        m = self._metrics
        m.backlog.set(stats.backlog)
        m.unconfirmed.set(stats.unconfirmed)
        m.lag.set(stats.lag_ms / 1000)
        m.state_bytes.set(stats.state_bytes)
        m.late(self._router.engine.late_readings)
        counts = self._router.engine.forecast_counts()
        if counts is not None:
            m.forecast(counts)
        return True
