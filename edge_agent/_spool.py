"""The store-and-forward spool: every outgoing message is written here first, in SQLite.

Durability: WAL journal with ``synchronous=FULL``, so a committed row survives SIGKILL *and* a
power cut (WAL + NORMAL would survive a process crash but could lose the last commits on power
loss, which the issue rules out). A row is deleted only when the broker's PUBACK for it arrives.

Bounds and the policy when full (applied after every insert, in this order):

1. Age: rows older than ``max_age_s`` are dropped (routine readings and events alike: a week-old
   alarm is history, and the cloud learns of it through the drop report).
2. Size: while over ``max_rows`` or ``max_bytes``, the oldest *routine* readings go first;
   events, alarms and acknowledgements go only when no routine reading is left.

Every drop is counted per device and priority in the ``drops`` table, in the same transaction
as the delete, so counts survive crashes; :meth:`Spool.take_drops` turns them into report rows
and zeroes them atomically, so each drop is reported exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Final, Literal

from edge_agent.errors import SpoolError

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    topic TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_s REAL NOT NULL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_priority ON outbox (priority, id);
CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox (created_s);
CREATE INDEX IF NOT EXISTS outbox_by_device ON outbox (device_id, id);
CREATE TABLE IF NOT EXISTS drops (
    device_id TEXT NOT NULL,
    cause TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (device_id, cause)
);
"""
_EVICT_BATCH: Final = 512
_DELETE_CHUNK: Final = 500  # well under SQLite's limit of bound parameters per statement


class Priority(IntEnum):
    """Lower is kept longer when the spool is full."""

    EVENT = 0
    ROUTINE = 1


DropCause = Literal["routine", "event", "refused"]
_CAUSE_OF: Final[dict[int, DropCause]] = {Priority.EVENT: "event", Priority.ROUTINE: "routine"}


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    """How much the spool may hold."""

    max_rows: int = 1_000_000
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 30 * 86_400.0

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1 or self.max_age_s <= 0:
            raise SpoolError(f"spool limits must be positive: {self}")


@dataclass(frozen=True, slots=True)
class NewRow:
    """A message to store."""

    device_id: str
    channel: str
    topic: str
    priority: Priority
    created_s: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """A stored message with its position in the spool."""

    id: int
    device_id: str
    channel: str
    topic: str
    priority: Priority
    created_s: float
    payload: bytes


class Spool:
    """A bounded, durable FIFO of outgoing messages in one SQLite file (single-thread owner)."""

    def __init__(
        self,
        path: Path,
        limits: SpoolLimits | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self._limits = limits or SpoolLimits()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
            rows, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            ).fetchone()
        except sqlite3.Error as exc:
            raise SpoolError(f"{path}: cannot open spool: {exc}") from exc
        self._path = path
        self._rows: int = rows
        self._bytes: int = size

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def __len__(self) -> int:
        return self._rows

    @property
    def size_bytes(self) -> int:
        """Bytes of topics and payloads held."""
        return self._bytes

    def put_many(
        self,
        rows: Sequence[NewRow],
        now_s: float,
        keep: Collection[int] = (),
        *,
        keep_new: bool | Sequence[bool] = False,
    ) -> list[int]:
        """Store ``rows`` in one transaction, then apply the bounds; the new ids in order.

        ``keep`` are ids awaiting a PUBACK, and ``keep_new`` says which new rows are about to be
        sent (all, none, or one flag per row): the bounds never evict them, because they may
        well arrive, and a message that arrived must not be counted as dropped. The spool may
        therefore exceed its bounds by the number of messages in flight.
        """
        if not rows:
            return []
        flags = [keep_new] * len(rows) if isinstance(keep_new, bool) else list(keep_new)
        if len(flags) != len(rows):
            raise ValueError(f"keep_new has {len(flags)} flags for {len(rows)} rows")
        with self._transaction():
            ids = [self._insert(row) for row in rows]
            sending = [i for i, flag in zip(ids, flags, strict=True) if flag]
            self._enforce(now_s, {*keep, *sending} if sending else keep)
        return ids

    def delete(self, ids: Iterable[int]) -> None:
        """Forget acknowledged messages."""
        batch = list(ids)
        if not batch:
            return
        with self._transaction():
            sizes = self._delete_returning(batch, "size")
            self._rows -= len(sizes)
            self._bytes -= sum(s[0] for s in sizes)

    def record_refused(self, device_id: str, count: int = 1) -> None:
        """Count messages the broker refused (they are deleted by the caller)."""
        with self._transaction():
            self._count_drop(device_id, "refused", count)

    def between(
        self, after_id: int, up_to_id: int, limit: int, device_id: str | None = None
    ) -> list[SpoolRow]:
        """Stored rows with ``after_id < id <= up_to_id`` (of one device if given), oldest first."""
        columns = "SELECT id, device_id, channel, topic, priority, created_s, payload FROM outbox"
        if device_id is None:
            cursor = self._db.execute(
                f"{columns} WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after_id, up_to_id, limit),
            )
        else:
            cursor = self._db.execute(
                f"{columns} WHERE device_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                (device_id, after_id, up_to_id, limit),
            )
        return [SpoolRow(r[0], r[1], r[2], r[3], Priority(r[4]), r[5], r[6]) for r in cursor]

    def max_id(self) -> int:
        """The id of the newest row ever stored (0 for a new spool)."""
        found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(found[0]) if found else 0

    def drop_counts(self) -> dict[str, dict[str, int]]:
        """Unreported drops: device id -> cause -> count."""
        counts: dict[str, dict[str, int]] = {}
        for device_id, cause, count in self._db.execute(
            "SELECT device_id, cause, count FROM drops"
        ):
            counts.setdefault(device_id, {})[cause] = count
        return counts

    def take_drops(
        self,
        make_report: Callable[[str, dict[str, int]], NewRow],
        now_s: float,
        keep: Collection[int] = (),
    ) -> list[int]:
        """Turn unreported drops into report rows and zero the counts, in one transaction."""
        counts = self.drop_counts()
        if not counts:
            return []
        with self._transaction():
            ids = [self._insert(make_report(dev, c)) for dev, c in sorted(counts.items())]
            self._db.execute("DELETE FROM drops")
            self._enforce(now_s, keep)
        return ids

    def close(self) -> None:
        """Close the database (committed rows are already on disk)."""
        self._db.close()

    # -- internals -------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._recount)

    def _recount(self) -> None:
        # After a rollback the running totals may count rows that were never committed.
        self._rows, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
        ).fetchone()

    def _insert(self, row: NewRow) -> int:
        size = len(row.payload) + len(row.topic)
        cursor = self._db.execute(
            "INSERT INTO outbox (device_id, channel, topic, priority, created_s, size, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.device_id,
                row.channel,
                row.topic,
                int(row.priority),
                row.created_s,
                size,
                row.payload,
            ),
        )
        self._rows += 1
        self._bytes += size
        return int(cursor.lastrowid or 0)

    def _enforce(self, now_s: float, keep: Collection[int]) -> None:
        self._evict_older_than(now_s - self._limits.max_age_s, keep)
        for priority in (Priority.ROUTINE, Priority.EVENT):
            while self._over_limit() and self._evict_oldest(priority, keep):
                pass

    def _over_limit(self) -> bool:
        return self._rows > self._limits.max_rows or self._bytes > self._limits.max_bytes

    def _evict_older_than(self, cutoff_s: float, keep: Collection[int]) -> None:
        if not keep:
            doomed = self._db.execute(
                "DELETE FROM outbox WHERE created_s < ? RETURNING device_id, priority, size",
                (cutoff_s,),
            ).fetchall()
            self._account(doomed)
            return
        old = self._db.execute("SELECT id FROM outbox WHERE created_s < ?", (cutoff_s,))
        self._evict_ids([row_id for (row_id,) in old if row_id not in keep])

    def _evict_oldest(self, priority: Priority, keep: Collection[int]) -> bool:
        """Drop just enough of the oldest rows of ``priority``; False if none could go."""
        after_id, chosen = 0, []
        rows, size = self._rows, self._bytes
        while rows > self._limits.max_rows or size > self._limits.max_bytes:
            candidates = self._db.execute(
                "SELECT id, size FROM outbox WHERE priority = ? AND id > ? ORDER BY id LIMIT ?",
                (int(priority), after_id, _EVICT_BATCH),
            ).fetchall()
            if not candidates:
                break
            for row_id, row_size in candidates:
                if rows <= self._limits.max_rows and size <= self._limits.max_bytes:
                    break
                if row_id not in keep:
                    chosen.append(row_id)
                    rows, size = rows - 1, size - row_size
            after_id = candidates[-1][0]
        self._evict_ids(chosen)
        return bool(chosen)

    def _evict_ids(self, ids: Sequence[int]) -> None:
        self._account(self._delete_returning(ids, "device_id, priority, size"))

    def _delete_returning(self, ids: Sequence[int], columns: str) -> list[Any]:
        """Delete rows by id in chunks (SQLite bounds the parameters); their ``columns``."""
        out: list[Any] = []
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start : start + _DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            out += self._db.execute(
                f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING {columns}",  # noqa: S608 - '?' marks, our own column names
                chunk,
            ).fetchall()
        return out

    def _account(self, doomed: list[tuple[str, int, int]]) -> None:
        per: dict[tuple[str, DropCause], int] = {}
        for device_id, priority, size in doomed:
            self._rows -= 1
            self._bytes -= size
            key = (device_id, _CAUSE_OF[priority])
            per[key] = per.get(key, 0) + 1
        for (device_id, cause), count in per.items():
            self._count_drop(device_id, cause, count)

    def _count_drop(self, device_id: str, cause: DropCause, count: int) -> None:
        self._db.execute(
            "INSERT INTO drops (device_id, cause, count) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id, cause) DO UPDATE SET count = count + excluded.count",
            (device_id, cause, count),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error, SQLite errors as ``SpoolError``."""

    def __init__(self, db: sqlite3.Connection, on_rollback: Callable[[], None]) -> None:
        self._db = db
        self._on_rollback = on_rollback

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise SpoolError(f"spool busy or broken: {exc}") from exc

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as commit_exc:
                self._rollback()
                raise SpoolError(f"spool commit failed: {commit_exc}") from commit_exc
            return
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise SpoolError(f"spool write failed: {exc}") from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._on_rollback()
