"""Replay of the backlog: passes over the spool, oldest first, paced by one token bucket.

A *pass* walks the spool's rows up to the newest id there was when it began (its ceiling):

* after every broker connection, one pass over every device's rows (what waited offline);
* after a device's own link comes back (a :class:`telemetry_core.driver.LinkProbe` said it was
  down), one pass over that device's rows only.

Rows of a device whose link is down are skipped by the broker pass and left in the spool; so are
rows of a device that has a pass of its own, which covers them in order. Rows paho already holds
(handed over, awaiting a PUBACK) are skipped too: paho resends them itself after a reconnect.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import structlog

from edge_agent._pacing import TokenBucket
from edge_agent._spool import Spool, SpoolRow

log = structlog.get_logger()

IDLE_WAIT_S = 1.0
"""How long the agent may sleep when replay has nothing to do (a new event wakes it sooner)."""


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    """How fast the backlog is replayed and how many messages may await a PUBACK."""

    rate_per_s: float = 100.0
    burst: int = 100
    max_inflight: int = 100
    batch: int = 256
    # A gateway samples devices due within this window together: one spool commit (one fsync)
    # for many readings instead of one each. Readings may come this much early.
    coalesce_s: float = 0.25


@dataclass(slots=True)
class _Pass:
    device_id: str | None  # None: every device's rows
    ceiling: int
    cursor: int = 0


class Replay:
    """The passes in progress and the bucket they share (owned by the agent's thread)."""

    def __init__(self, policy: ReplayPolicy, now_s: float) -> None:
        self._policy = policy
        self._bucket = TokenBucket(policy.rate_per_s, policy.burst, now_s)
        self._passes: list[_Pass] = []

    @property
    def pending(self) -> bool:
        """Whether some backlog is still to be replayed."""
        return bool(self._passes)

    def restart_all(self, ceiling: int) -> None:
        """A broker connection came up: replay every row up to ``ceiling`` (one pass covers all)."""
        self._passes = [_Pass(None, ceiling)]

    def restart_device(self, device_id: str, ceiling: int) -> None:
        """``device_id``'s link came back: replay its rows up to ``ceiling``, in order."""
        self.forget_device(device_id)
        self._passes.append(_Pass(device_id, ceiling))

    def forget_device(self, device_id: str) -> None:
        """``device_id``'s link went down: stop its own pass (a new one starts when it is back)."""
        self._passes = [p for p in self._passes if p.device_id != device_id]

    def take(
        self,
        spool: Spool,
        room: int,
        down: Collection[str],
        submitted: Collection[int],
        now_s: float,
    ) -> tuple[list[SpoolRow], float]:
        """The rows to replay now (at most ``room`` and what the bucket grants), and how many
        seconds until replay can go on (``IDLE_WAIT_S`` when nothing is waiting)."""
        if not self._passes or room <= 0:
            return [], IDLE_WAIT_S  # with no room, a PUBACK event will wake the loop
        budget = min(room, self._policy.batch, self._bucket.available(now_s))
        rows = self._collect(spool, budget, down, submitted) if budget else []
        self._bucket.take(len(rows), now_s)
        if not self._passes:
            log.info("replay_done", backlog=len(spool))
            return rows, IDLE_WAIT_S
        return rows, max(0.001, self._bucket.wait_s(now_s))

    def _collect(
        self, spool: Spool, budget: int, down: Collection[str], submitted: Collection[int]
    ) -> list[SpoolRow]:
        own = {p.device_id for p in self._passes if p.device_id is not None}
        held = {*down, *own}
        out: list[SpoolRow] = []
        for one in list(self._passes):
            skip = held if one.device_id is None else frozenset()
            self._walk(spool, one, out, budget=budget, skip=skip, submitted=submitted)
            if one.cursor >= one.ceiling:
                self._passes.remove(one)
            if len(out) >= budget:
                break
        return out

    def _walk(
        self,
        spool: Spool,
        one: _Pass,
        out: list[SpoolRow],
        *,
        budget: int,
        skip: Collection[str],
        submitted: Collection[int],
    ) -> None:
        """Advance ``one`` until ``out`` holds ``budget`` rows or the pass is done."""
        while len(out) < budget:
            rows = spool.between(one.cursor, one.ceiling, self._policy.batch, one.device_id)
            if not rows:
                one.cursor = one.ceiling
                return
            for row in rows:
                if len(out) >= budget:
                    return
                one.cursor = row.id
                if row.id not in submitted and row.device_id not in skip:
                    out.append(row)
