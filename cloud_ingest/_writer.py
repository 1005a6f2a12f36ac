"""Writing with retries: jittered backoff for outages, bisection for points the database refuses."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import structlog

from cloud_ingest._sinks import Sink
from cloud_ingest.errors import IngestError, SinkError

log = structlog.get_logger()

Sleep = Callable[[float], bool]
"""Waits some seconds; returns False if the ingester is stopping and the wait was cut short."""


class WriterStoppedError(IngestError):
    """The ingester stopped while a write was still being retried; nothing was acknowledged."""


class Backoff:
    """Exponential backoff with full jitter: a uniform delay in ``[min, min * 2**attempt]``."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self._min_s = min_s
        self._max_s = max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay_s(self) -> float:
        """The next delay; each call doubles the ceiling up to ``max_s``."""
        ceiling = min(self._max_s, self._min_s * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return self._rng.uniform(self._min_s, ceiling)

    def reset(self) -> None:
        """Start from the shortest delay again (after a success)."""
        self._attempt = 0


class BatchWriter:
    """Writes lines to a sink until it succeeds or refuses them; never drops a line silently."""

    def __init__(self, sink: Sink, backoff: Backoff, sleep: Sleep) -> None:
        self._sink = sink
        self._backoff = backoff
        self._sleep = sleep
        self.retries = 0
        self.writes = 0

    def close(self) -> None:
        """Close the sink."""
        self._sink.close()

    def write(self, lines: Sequence[str]) -> list[int]:
        """Write ``lines``; return the indices of lines the database refused as data.

        Raises ``WriterStoppedError`` if asked to stop while retrying an outage.
        """
        if not lines:
            return []
        try:
            self._write_retrying(lines)
        except SinkError as exc:
            if len(lines) == 1:
                log.warning("point_refused", status=exc.status, detail=exc.detail[:200])
                return [0]
            # Rewriting the accepted half is harmless: same series and time overwrite.
            mid = len(lines) // 2
            left = self.write(lines[:mid])
            right = self.write(lines[mid:])
            return left + [mid + i for i in right]
        return []

    def _write_retrying(self, lines: Sequence[str]) -> None:
        body = "\n".join(lines).encode("utf-8")
        while True:
            try:
                self.writes += 1
                self._sink.write(body)
            except SinkError as exc:
                if not exc.retryable:
                    raise
                self._wait_after(exc)
            else:
                self._backoff.reset()
                return

    def _wait_after(self, exc: SinkError) -> None:
        self.retries += 1
        delay_s = self._backoff.next_delay_s()
        level = log.error if exc.status in (401, 403, 404) else log.warning
        level(
            "sink_write_retry",
            status=exc.status,
            detail=exc.detail[:200],
            delay_s=round(delay_s, 3),
        )
        if not self._sleep(delay_s):
            raise WriterStoppedError("stopped while retrying a write") from exc
