"""A tests-only state store (SQLite, stdlib) with the engine store's interface, used until the
engine's SQLAlchemy ``AlertStore`` lands; never part of the package."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from alerting import Silence
from telemetry_core.schema import AlertTransition


class SqliteStore:
    """Keeps the last checkpoint and the silences in one SQLite file."""

    def __init__(self, path: Path, silences: Sequence[Silence] = ()) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS cp (id INTEGER PRIMARY KEY, state BLOB)")
        self._db.commit()
        self._silences = list(silences)

    def checkpoint(self, state: bytes, _transitions: Sequence[AlertTransition]) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO cp (id, state) VALUES (1, ?)", (state,))

    def load(self) -> bytes | None:
        row = self._db.execute("SELECT state FROM cp WHERE id = 1").fetchone()
        return bytes(row[0]) if row else None

    def silences(self) -> list[Silence]:
        return list(self._silences)
