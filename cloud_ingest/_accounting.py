"""Per-device accounting from sequence numbers and boot ids: gaps, duplicates, out of order.

A device numbers its messages ``seq`` 0, 1, 2 ... within one boot (``boot_id``). We remember, per
device, the highest ``seq`` of the current boot and a window of which recent numbers were seen,
as the bits of one integer, so telling a redelivered duplicate from a late message that fills a
gap costs a shift and a mask.

Counters never go negative and never leave int64 (they are InfluxDB integer fields): a late
number fills a gap only if the gap was counted (it is above the first number seen of the boot),
and the gap count saturates at :data:`COUNTER_MAX`. The contract bounds ``seq`` to 2**53 - 1,
so one difference always fits; many boots of a hostile device could still add up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

WINDOW: Final = 4096
"""How many sequence numbers below the highest are remembered exactly."""
_WINDOW_MASK: Final = (1 << WINDOW) - 1
COUNTER_MAX: Final = 2**63 - 1
"""InfluxDB's largest integer: counters stop there rather than produce a refused point."""


class DeviceCounters:
    """Cumulative counters of one device for this ingester instance (mutable, one writer thread)."""

    __slots__ = (
        "boot_id",
        "dirty",
        "duplicates",
        "floor",
        "gaps",
        "last_seq",
        "out_of_order",
        "received",
        "rejected",
        "seen",
    )

    def __init__(self) -> None:
        self.boot_id = ""
        self.last_seq = -1
        # The first number seen of this boot: numbers below it were never counted as gaps.
        self.floor = 0
        self.seen = 0
        self.received = 0
        self.gaps = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.rejected = 0
        self.dirty = False


class SeqTracker:
    """Counters for every device seen, keyed by device id (registry devices only)."""

    def __init__(self) -> None:
        self._devices: dict[str, DeviceCounters] = {}

    def counters(self, device_id: str) -> DeviceCounters:
        """The counters of ``device_id``, created on first use."""
        counters = self._devices.get(device_id)
        if counters is None:
            counters = self._devices[device_id] = DeviceCounters()
        return counters

    def observe(self, device_id: str, boot_id: str, seq: int) -> bool:
        """Count one accepted message; True if it is a duplicate of one already seen."""
        c = self.counters(device_id)
        c.received += 1
        c.dirty = True
        if boot_id != c.boot_id:
            # A reboot restarts the numbering: nothing before it can be compared.
            c.boot_id, c.last_seq, c.seen, c.floor = boot_id, seq, 1, seq
            return False
        ahead = seq - c.last_seq
        if ahead > 0:
            if ahead > 1:
                c.gaps = min(c.gaps + ahead - 1, COUNTER_MAX)
            c.seen = ((c.seen << ahead) | 1) & _WINDOW_MASK if ahead < WINDOW else 1
            c.last_seq = seq
            return False
        return _behind(c, -ahead)

    def reject(self, device_id: str) -> None:
        """Count one rejected message of a known device."""
        c = self.counters(device_id)
        c.rejected += 1
        c.dirty = True

    def take_dirty(self) -> Iterator[tuple[str, DeviceCounters]]:
        """Devices whose counters changed since the last call, marking them clean."""
        for device_id, c in self._devices.items():
            if c.dirty:
                c.dirty = False
                yield device_id, c

    def __len__(self) -> int:
        return len(self._devices)


def _behind(c: DeviceCounters, back: int) -> bool:
    """A number at or below the highest: a duplicate, or a late one that fills a gap."""
    if back >= WINDOW or c.last_seq - back < c.floor:
        # Too old to know whether we saw it, or from before the first number of the boot we
        # saw (the ingester started mid-boot): counting it late is the cautious reading.
        c.out_of_order += 1
        return False
    bit = 1 << back
    if c.seen & bit:
        c.duplicates += 1
        return True
    c.seen |= bit
    c.out_of_order += 1
    c.gaps -= 1
    return False
