"""The time the service ticks the engine at: wall time only once it has caught up.

A silent device is one not heard from for a while *by the time the service has read everything
sent before now*. After a restart, or while the broker redelivers a backlog, wall time runs
ahead of what has been read: ticking at wall time would call every device silent until its
queued readings come through, then clear them all. So the service ticks at its **event clock**:

* the newest live (not historical) event time it has evaluated, advanced by the wall time since
  it evaluated it, less ``lateness_s`` (one moment's readings arrive over a spread), and never
  past wall time. Caught up, this is wall time less the network's
  latency; while a backlog drains, it is the backlog's own time, so a device is judged silent
  only for a gap the backlog has not filled (a device truly silent in the backlog is reported,
  at the event time a live run would have reported it);
* wall time, once the service is idle: subscribed, nothing waiting and nothing unacknowledged
  (so the broker's flow control holds nothing back), and nothing received for ``quiet_s``. A
  backlog that ended in the past is then over, and a fleet that fell silent while the service
  was down is reported at once;
* no tick at all while the service is not subscribed (it cannot hear anyone, so it judges no
  one), or after a start until the first live reading or the first quiet spell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class EventClock:
    """Tracks what the service has read; :meth:`tick_at` says when to tick the engine at.

    Elapsed times are measured on the monotonic clock, so a step of the wall clock moves only
    the cap, not the event clock's pace.
    """

    quiet_s: float
    """Idle this long (nothing received, nothing unacknowledged): tick at wall time."""
    heard_at_s: float
    """Monotonic time something was last received, or the connection last came up."""
    newest_ms: int | None = None
    """The newest live event time evaluated."""
    newest_at_s: float = 0.0
    """Monotonic time :attr:`newest_ms` was evaluated."""
    lateness_s: float = 0.0
    """How far (event time) behind the newest reading the clock runs while reading: the spread
    over which one moment's readings of the fleet arrive."""

    def heard(self, mono_s: float, newest_ms: int = 0) -> None:
        """Something arrived at ``mono_s``; ``newest_ms``: the newest live event time (0: none)."""
        self.heard_at_s = mono_s
        if newest_ms and (self.newest_ms is None or newest_ms > self.newest_ms):
            self.newest_ms, self.newest_at_s = newest_ms, mono_s

    def tick_at(
        self, wall_s: float, mono_s: float, *, subscribed: bool, settled: bool
    ) -> float | None:
        """The time to tick the engine at, or None to hold the tick.

        ``settled``: nothing waits to be evaluated, checkpointed or acknowledged.
        """
        if not subscribed:
            return None
        if settled and mono_s - self.heard_at_s >= self.quiet_s:
            return wall_s
        if self.newest_ms is None:
            return None
        return min(wall_s, self.newest_ms / 1000 + (mono_s - self.newest_at_s) - self.lateness_s)
