"""Checkpoints: state made durable, then the messages it covers acknowledged.

    processor ──seal()──▶ Sealed ──submit()──▶ checkpoint thread
                                                 1. wait: every publish before the seal PUBACKed
                                                 2. store.checkpoint(delta, transitions)
                                                 3. ack the messages the seal covers

A message is acknowledged only once the state change it caused is in the store **and** every
transition published up to the seal has been acknowledged by the broker. The PUBACKs come
first: a state in the store always has its transitions with the broker, so a redelivered
message that the restored engine ignores (it has already applied it) lost nothing. After a crash the
store holds the last checkpoint; the broker redelivers every message not acknowledged, which
is every message after it (and perhaps a few before, whose acks were not sent yet: the engine
ignores a reading it has already applied), so the same transitions are emitted again with the
same ids. Consumers deduplicate by ``transition_id``.

A checkpoint holds the parts of the engine's state changed since the previous one
(:class:`~alerting._state.StateDelta`), taken on the processor thread between two messages, so
the parts hold exactly the effects of the messages the seal covers. A seal that cannot be
handed over is merged into the next one, never dropped: a later delta does not repeat it.

Store errors: a **transient** one (connection lost, lock timeout: ``StoreError.retryable``, or
an ``OSError``) is retried with backoff, nothing acknowledged meanwhile. A **permanent** one
that belongs to one transition (the database refuses it: a second active alert for one
(device, rule), a value it cannot hold) is set aside by the store, which writes the rest of
the checkpoint and returns the refused transition with its reason: it is dead-lettered
(:attr:`Checkpointer.refused`) and the stream goes on. Any other permanent error (the state
itself cannot be written) ends the thread, and so the process (exit 70), with
``checkpoint_store_fatal`` naming the database and the error: retrying would stall the acks
forever with the process alive, and skipping the write would lose state.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from alerting._consumer import Backoff
from alerting._state import StateDelta
from alerting.errors import StoreError
from telemetry_core.schema import AlertTransition

log = structlog.get_logger()


Refused = tuple[AlertTransition, str]
"""A transition the store refused for good, and why (naming the database)."""


class StateStore(Protocol):
    """Where checkpoints live (the engine's SQLAlchemy store; a fake in unit tests)."""

    @property
    def name(self) -> str:
        """The store, for logs (a URL without its password)."""
        ...

    def checkpoint(
        self, delta: StateDelta, transitions: Sequence[AlertTransition]
    ) -> Sequence[Refused]:
        """Make ``delta`` and the ``transitions`` since the previous checkpoint durable, except
        the transitions it returns (refused for good); ``StoreError`` if nothing was written."""
        ...

    def load(self) -> dict[str, bytes] | None:
        """The state's parts as of the last checkpoint, or None if there is none."""
        ...


class Acker(Protocol):
    """The MQTT side as the checkpointer sees it."""

    def ack_later(self, generation: int, mids: list[int]) -> None:
        """Acknowledge ``mids`` received on connection ``generation``."""

    def confirmed_below(self, seq: int) -> bool:
        """Whether every publish numbered below ``seq`` has been acknowledged by the broker."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A checkpoint to write and the acknowledgements it releases."""

    delta: StateDelta
    transitions: tuple[AlertTransition, ...]
    acks: tuple[tuple[int, list[int]], ...]
    """``(generation, packet ids)`` of the messages whose effects ``state`` holds."""
    publish_watermark: int
    """Every publish numbered below this must be acknowledged before the acks are sent."""
    messages: int
    sealed_s: float


@dataclass(slots=True)
class AckLedger:
    """What the processor did since the last checkpoint it handed over (processor thread only)."""

    _acks: dict[int, list[int]] = field(default_factory=dict)
    _transitions: list[AlertTransition] = field(default_factory=list)
    _carried: StateDelta | None = None
    messages: int = 0

    def note_message(self, generation: int, mid: int, qos: int) -> None:
        """A message was handled (or dead-lettered); ack it with the next checkpoint."""
        self.messages += 1
        if qos == 1:  # QoS 0 needs no ack; QoS 2 never comes (we subscribe at QoS 1)
            self._acks.setdefault(generation, []).append(mid)

    def note_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        """Transitions published since the last checkpoint, for the store's alert log."""
        self._transitions.extend(transitions)

    @property
    def dirty(self) -> bool:
        """Whether anything happened since the last seal."""
        return bool(self.messages or self._transitions)

    def seal(self, delta: StateDelta, publish_watermark: int, now_s: float) -> Sealed:
        """The checkpoint of everything noted so far; the ledger starts empty again."""
        if self._carried is not None:
            delta, self._carried = self._carried.merged(delta), None
        sealed = Sealed(
            delta=delta,
            transitions=tuple(self._transitions),
            acks=tuple(self._acks.items()),
            publish_watermark=publish_watermark,
            messages=self.messages,
            sealed_s=now_s,
        )
        self._acks, self._transitions, self.messages = {}, [], 0
        return sealed

    def restore(self, sealed: Sealed) -> None:
        """Take back a seal that could not be handed over: it goes out with the next one."""
        for generation, mids in sealed.acks:
            self._acks.setdefault(generation, [])[:0] = mids
        self._transitions[:0] = sealed.transitions
        self.messages += sealed.messages
        self._carried = sealed.delta  # the seal merged what was carried before: None now


Observer = Callable[[Sealed, float], None]
"""Told of each checkpoint written and acknowledged, with the seconds it took."""


class Checkpointer:
    """The checkpoint thread's work: wait for PUBACKs, write, acknowledge; one seal at a time."""

    def __init__(
        self,
        store: StateStore,
        acker: Acker,
        backoff: Backoff,
        *,
        confirmed: threading.Event,
        stop: threading.Event,
        observe: Observer | None = None,
        on_error: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._acker = acker
        self._backoff = backoff
        self._confirmed = confirmed
        self._stop = stop
        self._observe = observe
        self._on_error = on_error
        self._slot: Sealed | None = None
        self._lock = threading.Condition()
        self.written = 0
        self.store_errors = 0
        self.refused: collections.deque[Refused] = collections.deque()
        """Transitions the store refused for good, for the processor to dead-letter."""

    def submit(self, sealed: Sealed) -> bool:
        """Hand ``sealed`` over; False if the previous one is still in hand (keep it for later)."""
        with self._lock:
            if self._slot is not None:
                return False
            self._slot = sealed
            self._lock.notify()
            return True

    @property
    def busy(self) -> bool:
        """Whether a seal is being written or waits for its PUBACKs."""
        return self._slot is not None

    def run(self) -> None:
        """The thread's loop: until stopped, and then until the seal in hand is done."""
        while True:
            with self._lock:
                while self._slot is None and not self._stop.is_set():
                    self._lock.wait(0.2)
                if self._slot is None:
                    return
            self.drain_once()

    def drain_once(self) -> bool:
        """Complete the seal in hand, if any (the loop's body; tests call it directly)."""
        sealed = self._slot
        if sealed is None:
            return False
        done = self.complete(sealed)
        with self._lock:
            self._slot = None
        return done

    def complete(self, sealed: Sealed) -> bool:
        """Wait for ``sealed``'s publishes, write it, send its acks; False if stopped first."""
        started = time.monotonic()
        if not self._wait_confirmed(sealed.publish_watermark) or not self._write(sealed):
            return False
        for generation, mids in sealed.acks:
            self._acker.ack_later(generation, mids)
        self.written += 1
        if self._observe is not None:
            self._observe(sealed, time.monotonic() - started)
        return True

    def _write(self, sealed: Sealed) -> bool:
        while True:
            try:
                refused = self._store.checkpoint(sealed.delta, sealed.transitions)
            except (StoreError, OSError) as exc:
                self.store_errors += 1
                if self._on_error is not None:
                    self._on_error()
                if isinstance(exc, StoreError) and not exc.retryable:
                    log.critical("checkpoint_store_fatal", store=self._store.name,
                                 error=str(exc), error_type=type(exc).__name__)  # fmt: skip
                    raise
                # A retried outage: the error, not a traceback per attempt.
                log.error("checkpoint_write_failed", store=self._store.name, error=str(exc),  # noqa: TRY400
                          error_type=type(exc).__name__)  # fmt: skip
                if self._stop.wait(self._backoff.next_delay_s()):
                    return False
                continue
            self._backoff.reset()
            if refused:
                log.error("checkpoint_transitions_refused", store=self._store.name,
                          refused=len(refused), reason=refused[0][1][:300])  # fmt: skip
                self.refused.extend(refused)
            return True

    def _wait_confirmed(self, watermark: int) -> bool:
        # A stop does not cut this short while the broker is there: a clean stop acks what it can.
        deadline = None
        while not self._acker.confirmed_below(watermark):
            self._confirmed.clear()
            if self._acker.confirmed_below(watermark):
                break
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + 2.0
                if time.monotonic() > deadline:
                    return False
            self._confirmed.wait(0.1)
        return True
