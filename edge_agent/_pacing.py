"""Pacing: jittered reconnect back-off and the token bucket that rate-limits replay."""

from __future__ import annotations

import random


class Backoff:
    """Exponential back-off with full jitter (a uniform delay up to the exponential cap).

    Full jitter matters when a whole district comes back at once: without it every device
    retries at the same instants and the broker sees synchronised connection storms.
    """

    def __init__(
        self, base_s: float = 0.5, cap_s: float = 60.0, rng: random.Random | None = None
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"want 0 < base_s <= cap_s, got {base_s}, {cap_s}")
        self._base_s = base_s
        self._cap_s = cap_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay_s(self) -> float:
        """The delay before the next attempt; grows with each call until :meth:`reset`."""
        ceiling = min(self._cap_s, self._base_s * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 62)
        # A floor of a tenth of the base keeps a tight loop from hammering a refusing broker.
        return max(self._base_s / 10.0, self._rng.uniform(0.0, ceiling))

    def reset(self) -> None:
        """Start again from the base delay (after a successful connection)."""
        self._attempt = 0


class TokenBucket:
    """``rate_per_s`` tokens a second, up to ``burst``; one token per replayed message."""

    def __init__(self, rate_per_s: float, burst: float, now_s: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"want rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._at_s = now_s

    def take(self, wanted: int, now_s: float) -> int:
        """Take up to ``wanted`` whole tokens at monotonic time ``now_s``; how many were taken."""
        self._refill(now_s)
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return max(granted, 0)

    def available(self, now_s: float) -> int:
        """Whole tokens that :meth:`take` would grant at ``now_s``, without taking them."""
        self._refill(now_s)
        return max(int(self._tokens), 0)

    def wait_s(self, now_s: float) -> float:
        """Seconds until at least one token is available."""
        self._refill(now_s)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._at_s)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._at_s = now_s
