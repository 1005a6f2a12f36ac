"""Time as a port: the real clock for production, a manual one for tests that never sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time. Injected wherever code needs ``now``."""

    def now_s(self) -> float:
        """Seconds since the Unix epoch (UTC), as wall-clock time."""
        ...

    def monotonic_s(self) -> float:
        """Seconds from an arbitrary origin that never go backwards."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now_s(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()

    def monotonic_s(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for tests and accelerated simulation."""

    def __init__(self, start_s: float = 1_764_000_000.0) -> None:
        self._now_s = start_s
        self._mono_s = 0.0

    def now_s(self) -> float:
        """The current manual wall-clock time."""
        return self._now_s

    def monotonic_s(self) -> float:
        """The current manual monotonic time."""
        return self._mono_s

    def advance(self, seconds: float) -> None:
        """Move both clocks forward; never backwards."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._now_s += seconds
        self._mono_s += seconds


def ms_to_datetime(ts_ms: int) -> datetime:
    """An aware UTC datetime from integer milliseconds since the epoch."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def now_ms(clock: Clock) -> int:
    """The clock's wall time in integer milliseconds (the wire contract's ``ts``)."""
    return int(clock.now_s() * 1000)


class ScaledClock:
    """Simulated time that runs ``speed`` times faster than the machine's clock from ``start_s``.

    ``speed=60`` turns a minute of wall time into an hour of simulated time; the monotonic clock
    is scaled the same way so that intervals measured with it are simulated intervals.
    """

    def __init__(
        self, speed: float, start_s: float | None = None, base: Clock | None = None
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._base = base or SystemClock()
        self._speed = speed
        self._wall0 = self._base.monotonic_s()
        self._start_s = self._base.now_s() if start_s is None else start_s

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per wall-clock second."""
        return self._speed

    def now_s(self) -> float:
        """Simulated wall-clock seconds since the epoch."""
        return self._start_s + (self._base.monotonic_s() - self._wall0) * self._speed

    def monotonic_s(self) -> float:
        """Simulated seconds since this clock was made."""
        return (self._base.monotonic_s() - self._wall0) * self._speed
