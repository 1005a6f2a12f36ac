"""Messages the broker dropped: Mosquitto's ``$SYS`` drop counter, watched so no loss is silent.

When a subscriber's queue reaches Mosquitto's bound (``max_queued_bytes`` /
``max_queued_messages``), the *broker* drops the message and the ingester never sees it.
Mosquitto counts every such drop in one broker-wide counter and publishes it, retained, at QoS 0,
every ``sys_interval`` seconds (10 by default) when it changed, as
``$SYS/broker/publish/messages/dropped``.
It also publishes ``$SYS/broker/uptime`` (``"123 seconds"``) every interval; uptime going down
means the broker restarted and its counter started again from 0.

What the number means: drops of *any* client of that broker since it started (the ingester's
session, but also a slow dashboard subscriber or an offline device's queue of commands), not
only ours. Mosquitto names the client only in its own log (``Outgoing messages are being dropped
for client <id>``). We count every increase as loss to look into.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

import structlog

log = structlog.get_logger()

DROPPED_TOPIC: Final = "$SYS/broker/publish/messages/dropped"
UPTIME_TOPIC: Final = "$SYS/broker/uptime"
SYS_TOPICS: Final = (UPTIME_TOPIC, DROPPED_TOPIC)
"""Subscribed in this order, so after a broker restart the uptime arrives before the counter."""

DropSink = Callable[[int, int], None]
"""Called with ``(increase, broker_total)`` whenever the counter goes up (Prometheus)."""


class BrokerDropWatch:
    """Follows the broker's drop counter; fed by the MQTT network thread, read by the stats.

    The first value this process sees is counted in full: drops that happened while no ingester
    was running are exactly the ones nobody has reported yet. (So after an ingester restart the
    broker's drops since *its* start are reported once more; ``total`` is the broker's own number.)
    """

    def __init__(self, on_increase: DropSink | None = None) -> None:
        self._lock = threading.Lock()
        self._on_increase = on_increase
        self._last_total: int | None = None
        self._last_uptime_s = -1
        self._seen = 0
        self._unreported = 0
        self.total = 0
        """The broker's counter as last published (drops since the broker started)."""
        self.malformed = 0

    @property
    def seen(self) -> int:
        """Drops this process has noticed since it started (the sum of the increases)."""
        return self._seen

    def on_message(self, topic: str, payload: bytes) -> None:
        """Handle one ``$SYS`` message (never raises: it runs in the network thread)."""
        value = _leading_int(payload)
        if value is None:
            self.malformed += 1
            log.warning("broker_sys_unreadable", topic=topic, payload=payload[:64].hex())
            return
        if topic == UPTIME_TOPIC:
            self._uptime(value)
        elif topic == DROPPED_TOPIC:
            self._dropped(value)

    def take_delta(self) -> int:
        """Drops noticed since the previous call (the ``broker_dropped`` field of a stats point)."""
        with self._lock:
            delta, self._unreported = self._unreported, 0
        return delta

    def _uptime(self, uptime_s: int) -> None:
        with self._lock:
            restarted = uptime_s < self._last_uptime_s
            self._last_uptime_s = uptime_s
            if restarted and self._last_total is not None:
                # The counter restarts at 0 with the broker: what it says next is all new.
                self._last_total = 0
        if restarted:
            log.info("broker_restarted", uptime_s=uptime_s)

    def _dropped(self, total: int) -> None:
        with self._lock:
            last = self._last_total or 0
            # Below the last value: the broker restarted and we missed its uptime going down.
            increase = total - last if total >= last else total
            self._last_total = total
            self.total = total
            self._seen += increase
            self._unreported += increase
        if increase > 0:
            log.error("broker_dropped_messages", dropped=increase, broker_total=total,
                      topic=DROPPED_TOPIC)  # fmt: skip
            if self._on_increase is not None:
                self._on_increase(increase, total)


def _leading_int(payload: bytes) -> int | None:
    """``123`` from ``b"123"`` or ``b"123 seconds"``; None if it does not start with one."""
    head = payload[:32].split(b" ", 1)[0]
    if not head.isdigit():
        return None
    return int(head)
