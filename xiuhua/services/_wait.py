"""Deadline-based polling: wait for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


class WaitTimeoutError(AssertionError, TimeoutError):
    """A condition did not hold before its deadline.

    It is both an ``AssertionError`` (pytest reports it as a failed expectation) and a
    ``TimeoutError`` (service code can catch it as one).
    """


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    message: str = "",
) -> None:
    """Call ``predicate`` until it is true; raise :class:`WaitTimeoutError` after ``timeout_s``.

    Returns as soon as the condition holds, so a generous deadline costs nothing when things
    are fast. The predicate is always tried once more at the deadline, so a slow machine that
    makes the condition true during the last sleep still passes. Exceptions raised by the
    predicate propagate: a predicate that can fail transiently must catch its own errors.
    """
    poll_until(
        predicate,
        timeout_s=timeout_s,
        interval_s=interval_s,
        message=message,
        monotonic_s=time.monotonic,
        sleep_s=time.sleep,
    )


def poll_until(
    predicate: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float,
    message: str,
    monotonic_s: Callable[[], float],
    sleep_s: Callable[[float], None],
) -> None:
    """:func:`wait_until` with the clock and the sleep injected (for tests that never sleep)."""
    if timeout_s < 0 or interval_s <= 0:
        raise ValueError(f"need timeout_s >= 0 and interval_s > 0, got {timeout_s}, {interval_s}")
    deadline = monotonic_s() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        if predicate():
            return
        remaining = deadline - monotonic_s()
        if remaining <= 0:
            break
        sleep_s(min(interval_s, remaining))
    what = message or getattr(predicate, "__name__", "condition")
    raise WaitTimeoutError(f"timed out after {timeout_s:g} s ({attempts} tries): {what}")
