"""Sequence accounting: gaps, duplicates, late messages and reboots."""

from __future__ import annotations

from cloud_ingest import SeqTracker
from cloud_ingest._accounting import WINDOW


def feed(tracker: SeqTracker, seqs: list[int], boot: str = "b1") -> list[bool]:
    return [tracker.observe("d-1", boot, s) for s in seqs]


def test_in_order_stream_has_no_gaps() -> None:
    t = SeqTracker()
    feed(t, list(range(10)))
    c = t.counters("d-1")
    assert (c.received, c.gaps, c.duplicates, c.out_of_order) == (10, 0, 0, 0)


def test_gap_then_late_arrival_fills_it() -> None:
    t = SeqTracker()
    feed(t, [0, 1, 4])
    assert t.counters("d-1").gaps == 2
    feed(t, [2])
    c = t.counters("d-1")
    assert (c.gaps, c.out_of_order, c.duplicates) == (1, 1, 0)


def test_redelivered_messages_are_duplicates() -> None:
    t = SeqTracker()
    assert feed(t, [0, 1, 2, 1, 2, 2]) == [False, False, False, True, True, True]
    assert t.counters("d-1").duplicates == 3


def test_reboot_restarts_numbering() -> None:
    t = SeqTracker()
    feed(t, [0, 1, 2, 3])
    feed(t, [0, 1], boot="b2")
    c = t.counters("d-1")
    assert (c.gaps, c.duplicates, c.received) == (0, 0, 6)


def test_far_jump_and_very_old_number() -> None:
    t = SeqTracker()
    feed(t, [0, WINDOW * 3])
    feed(t, [1])
    c = t.counters("d-1")
    assert c.gaps == WINDOW * 3 - 1
    assert c.out_of_order == 1


def test_take_dirty_reports_each_change_once() -> None:
    t = SeqTracker()
    feed(t, [0])
    t.reject("d-2")
    assert sorted(d for d, _ in t.take_dirty()) == ["d-1", "d-2"]
    assert list(t.take_dirty()) == []
