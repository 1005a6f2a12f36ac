"""The SQLite spool: durable order, bounds with priorities, drop accounting."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import NewRow, Priority, Spool, SpoolError, SpoolLimits


def _row(
    n: int, priority: Priority = Priority.ROUTINE, device: str = "dev-a", at_s: float = 100.0
) -> NewRow:
    return NewRow(device, "telemetry", f"t/{n}", priority, at_s, f"payload-{n:04d}".encode())


def test_rows_survive_reopen_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    ids = spool.put_many([_row(n) for n in range(5)], 100.0)
    spool.delete(ids[:2])
    spool.close()
    reopened = Spool(tmp_path / "s.db")
    assert [r.topic for r in reopened.between(0, reopened.max_id(), 10)] == ["t/2", "t/3", "t/4"]
    assert len(reopened) == 3
    assert reopened.size_bytes == 3 * (len("payload-0000") + len("t/0"))


def test_full_spool_drops_oldest_routine_first_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_rows=4))
    spool.put_many([_row(0, Priority.EVENT), _row(1), _row(2), _row(3, Priority.EVENT)], 100.0)
    spool.put_many([_row(4), _row(5)], 100.0)
    kept = [r.topic for r in spool.between(0, spool.max_id(), 10)]
    assert kept == ["t/0", "t/3", "t/4", "t/5"]
    assert spool.drop_counts() == {"dev-a": {"routine": 2}}


def test_rows_awaiting_a_puback_are_never_evicted_nor_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_rows=3, max_age_s=50.0))
    ids = spool.put_many([_row(n) for n in range(3)], 100.0)
    spool.put_many([_row(3), _row(4)], 100.0, keep={ids[0], ids[1]})
    # The oldest rows not in flight (t/2, t/3) went instead of t/0 and t/1.
    assert [r.topic for r in spool.between(0, 99, 10)] == ["t/0", "t/1", "t/4"]
    assert spool.drop_counts() == {"dev-a": {"routine": 2}}
    spool.put_many([_row(5, at_s=200.0)], 200.0, keep={ids[0]})  # t/1, t/3, t/4 too old now
    assert [r.topic for r in spool.between(0, 99, 10)] == ["t/0", "t/5"]
    assert spool.drop_counts() == {"dev-a": {"routine": 4}}


def test_events_go_only_when_no_routine_reading_is_left(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_rows=2))
    spool.put_many([_row(n, Priority.EVENT) for n in range(3)], 100.0)
    assert [r.topic for r in spool.between(0, 99, 10)] == ["t/1", "t/2"]
    assert spool.drop_counts() == {"dev-a": {"event": 1}}


def test_byte_bound_and_age_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_bytes=40, max_age_s=50))
    spool.put_many([_row(0, at_s=10.0), _row(1, at_s=90.0), _row(2, at_s=95.0)], 100.0)
    assert [r.topic for r in spool.between(0, 99, 10)] == ["t/1", "t/2"]  # t/0 too old
    spool.put_many([_row(3, at_s=100.0)], 100.0)  # 3 x 15 bytes > 40: the oldest routine goes
    assert [r.topic for r in spool.between(0, 99, 10)] == ["t/2", "t/3"]
    assert spool.drop_counts() == {"dev-a": {"routine": 2}}


def test_take_drops_reports_once_and_zeroes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_rows=2))
    ids = spool.put_many([_row(0), _row(1), _row(2)], 100.0)
    spool.delete(ids)  # acknowledged: room for the report without evicting anything more
    spool.record_refused("dev-a", 2)
    seen: list[dict[str, int]] = []

    def report(device_id: str, counts: dict[str, int]) -> NewRow:
        seen.append(counts)
        return _row(99, Priority.EVENT, device_id)

    assert len(spool.take_drops(report, 100.0)) == 1
    assert seen == [{"routine": 1, "refused": 2}]
    assert spool.drop_counts() == {}
    assert spool.take_drops(report, 100.0) == []


def test_limits_must_be_positive() -> None:
    with pytest.raises(SpoolError):
        SpoolLimits(max_rows=0)


def test_unopenable_spool_is_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(SpoolError, match="cannot open"):
        Spool(tmp_path / "dir.db")


def test_new_rows_flagged_as_sent_are_kept_the_others_evictable(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", SpoolLimits(max_rows=2))
    rows = [_row(0, device="held"), _row(1), _row(2, device="held"), _row(3)]
    spool.put_many(rows, 100.0, keep_new=[False, True, False, True])
    assert [r.topic for r in spool.between(0, spool.max_id(), 10)] == ["t/1", "t/3"]
    assert spool.drop_counts() == {"held": {"routine": 2}}
    with pytest.raises(ValueError, match="2 flags for 1 rows"):
        spool.put_many([_row(4)], 100.0, keep_new=[True, False])


def test_rows_of_one_device_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    spool.put_many([_row(n, device="dev-b" if n % 2 else "dev-a") for n in range(6)], 100.0)
    rows = spool.between(1, spool.max_id(), 10, device_id="dev-b")
    assert [r.topic for r in rows] == ["t/1", "t/3", "t/5"]
    assert [r.topic for r in spool.between(2, 5, 10, device_id="dev-b")] == ["t/3"]
