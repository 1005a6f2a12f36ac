"""The state store: alerts (active and history), transitions, silences and the engine checkpoint.

SQLAlchemy Core over SQLite (the default, a file next to the service) or PostgreSQL, with the
same interface. ``checkpoint(delta, transitions)`` writes the parts of the engine's state
changed since the last checkpoint (a row per part in ``engine_state``, upserted by key) and
the alert changes of the transitions since the last one **in one transaction**, so after a
crash the store holds a checkpoint and exactly the alerts it implies. One active alert per
(device, rule) is the database's own rule: a partial unique index over the active rows.

Errors: a lost connection or a lock timeout raises ``StoreError(retryable=True)``. A
transition the database refuses for good (an integrity or data error) does not sink the
checkpoint: it is written again with each transition in its own savepoint, the refused ones
are recorded in ``alert_refusals`` and returned, and the state and the rest are written. A
permanent error in the state itself raises ``StoreError(retryable=False)``.

A store written before checkpoints were incremental holds the whole state in one row
(``engine_checkpoint``); ``load()`` moves it into parts and drops that table, in one
transaction.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from alerting._hygiene import Silence
from alerting._snapshot import split
from alerting._state import StateDelta
from alerting.errors import StoreError
from telemetry_core.schema import AlertTransition

log = structlog.get_logger()

_META = sa.MetaData()
ALERTS = sa.Table(
    "alerts", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(128), nullable=False, unique=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("district", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("tier", sa.String(8), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("reason", sa.String(512), nullable=False, default=""),
    sa.Column("flapping", sa.Boolean, nullable=False, default=False),
    sa.Column("incident_id", sa.String(128), nullable=True),
    sa.Column("opened_ts", sa.BigInteger, nullable=False),
    sa.Column("updated_ts", sa.BigInteger, nullable=False),
    sa.Column("closed_ts", sa.BigInteger, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
)  # fmt: skip
sa.Index(
    "one_active_alert_per_device_rule", ALERTS.c.device_id, ALERTS.c.rule, unique=True,
    sqlite_where=ALERTS.c.active, postgresql_where=ALERTS.c.active,
)  # fmt: skip
TRANSITIONS = sa.Table(
    "alert_transitions", _META,
    sa.Column("transition_id", sa.String(128), primary_key=True),
    sa.Column("alert_id", sa.String(128), nullable=False, index=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)  # fmt: skip
SILENCES = sa.Table(
    "silences", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(64), nullable=True),
    sa.Column("district", sa.String(32), nullable=True),
    sa.Column("rule", sa.String(64), nullable=True),
    sa.Column("starts_s", sa.Float, nullable=False),
    sa.Column("ends_s", sa.Float, nullable=False),
    sa.Column("comment", sa.String(512), nullable=False, default=""),
)  # fmt: skip
STATE = sa.Table(
    "engine_state", _META,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("part", sa.LargeBinary, nullable=False),
    sa.Column("written_at_s", sa.Float, nullable=False),
)  # fmt: skip
REFUSALS = sa.Table(
    "alert_refusals", _META,
    sa.Column("transition_id", sa.String(128), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(1024), nullable=False),
    sa.Column("refused_at_s", sa.Float, nullable=False),
)  # fmt: skip
_LEGACY_META = sa.MetaData()
LEGACY_CHECKPOINT = sa.Table(
    "engine_checkpoint", _LEGACY_META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("transitions", sa.BigInteger, nullable=False),
    sa.Column("written_at_s", sa.Float, nullable=False),
)  # fmt: skip
"""The whole state in one row, as stores written before incremental checkpoints hold it."""
_TRANSIENT: Final = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError,
                     sa.exc.DisconnectionError, sa.exc.InternalError)  # fmt: skip
"""Connection lost, lock or statement timeout, a busy database: trying again can succeed."""
_PERMANENT: Final = (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.ProgrammingError,
                     sa.exc.NotSupportedError)  # fmt: skip
"""The same statement fails again: refused data, or a schema that does not fit. Errors that are
neither (a corrupt file, a value the driver cannot bind) count as permanent too."""
_CHUNK: Final = 500
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(AlertTransition)


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """An alert standing now, as the store holds it."""

    alert_id: str
    device_id: str
    district: str
    rule: str
    category: str
    tier: str
    opened_ts: int
    updated_ts: int
    flapping: bool
    incident_id: str | None


class AlertStore:
    """Alerts, transitions, silences and the checkpoint, in one database (``url``)."""

    def __init__(
        self, url: str = "sqlite:///alerting.db", *, echo: bool = False,
        lock_timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        """Open (and create the tables of) the store at ``url``; a write waits at most
        ``lock_timeout_s`` for a lock, then fails as a retryable ``StoreError``."""
        self.url = url
        lock_ms = max(1, int(lock_timeout_s * 1000))
        try:
            backend = sa.make_url(url).get_backend_name()
            connect_args = (
                {"options": f"-c lock_timeout={lock_ms}"} if backend == "postgresql" else {}
            )
            self._engine: Engine = sa.create_engine(url, echo=echo, connect_args=connect_args)
            if self._engine.dialect.name == "sqlite":
                sa.event.listen(
                    self._engine, "connect", functools.partial(_sqlite_pragmas, lock_ms)
                )
                sa.event.listen(self._engine, "begin", _sqlite_begin)
            _META.create_all(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"alert store {self._safe_url()}: cannot open: {exc}") from exc

    def _safe_url(self) -> str:
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return f"{self.url!r} (not a database URL such as sqlite:///alerting.sqlite)"

    @property
    def name(self) -> str:
        """The database's URL without its password, for logs."""
        return self._safe_url()

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    # -- checkpoint -----------------------------------------------------------------------------

    def checkpoint(
        self, delta: StateDelta, transitions: Sequence[AlertTransition]
    ) -> list[tuple[AlertTransition, str]]:
        """Write ``delta`` and apply ``transitions`` atomically; replayed ids are ignored.

        Returns the transitions the database refused for good, with the reason; everything
        else is written. ``StoreError`` (``retryable`` or not) if nothing was written.
        """
        try:
            with self._engine.begin() as conn:
                for tr in transitions:
                    if self._record(conn, tr):
                        self._apply(conn, tr)
                self._save_state(conn, delta)
        except _PERMANENT as exc:
            if not transitions:
                raise self._error("the state cannot be written", exc) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise self._error("checkpoint failed", exc) from exc
        else:
            return []
        return self._checkpoint_isolated(delta, transitions)

    def _checkpoint_isolated(
        self, delta: StateDelta, transitions: Sequence[AlertTransition]
    ) -> list[tuple[AlertTransition, str]]:
        """The checkpoint again, each transition in its own savepoint, so that one the
        database refuses is set aside (and recorded) instead of sinking the rest."""
        refused: list[tuple[AlertTransition, str]] = []
        try:
            with self._engine.begin() as conn:
                for tr in transitions:
                    why = self._one(conn, tr)
                    if why is not None:
                        refused.append((tr, why))
                        self._refusal(conn, tr, why)
                self._save_state(conn, delta)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error("checkpoint failed", exc, "the state cannot be written") from exc
        return refused

    def _one(self, conn: Connection, tr: AlertTransition) -> str | None:
        """Record and apply one transition in a savepoint; the reason if it was refused."""
        try:
            with conn.begin_nested():
                if self._record(conn, tr):
                    self._apply(conn, tr)
        except _PERMANENT as exc:
            what = "a second active alert for one (device, rule)" if _active_clash(exc) else ""
            return (f"alert store {self._safe_url()}: refused transition {tr.transition_id}: "
                    f"{what or type(exc).__name__}: {str(exc.orig)[:300]}")  # fmt: skip
        return None

    def _refusal(self, conn: Connection, tr: AlertTransition, why: str) -> None:
        stmt = self._insert(REFUSALS).values(
            transition_id=tr.transition_id, device_id=tr.device_id, reason=why[:1024],
            refused_at_s=time.time(),
        ).on_conflict_do_nothing(index_elements=["transition_id"])  # fmt: skip
        conn.execute(stmt)

    def _error(self, what: str, exc: sa.exc.SQLAlchemyError, permanent: str = "") -> StoreError:
        retryable = isinstance(exc, _TRANSIENT) or bool(getattr(exc, "connection_invalidated", 0))
        what = what if retryable or not permanent else permanent
        detail = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        return StoreError(f"alert store {self._safe_url()}: {what}: {type(exc).__name__}: "
                          f"{detail}", retryable=retryable)  # fmt: skip

    def load(self) -> dict[str, bytes] | None:
        """The parts of the last checkpointed engine state, or ``None`` on a fresh store.

        A store that holds the whole state in its old single row is migrated to parts first.
        """
        try:
            with self._engine.begin() as conn:
                rows = {k: bytes(v) for k, v in conn.execute(sa.select(STATE.c.key, STATE.c.part))}
                if not rows and sa.inspect(conn).has_table(LEGACY_CHECKPOINT.name):
                    rows = self._migrate(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"alert store {self._safe_url()}: load failed: {exc}",
                             retryable=isinstance(exc, _TRANSIENT)) from exc  # fmt: skip
        return rows or None

    def _migrate(self, conn: Connection) -> dict[str, bytes]:
        """The old single row of the whole state, cut into parts (and the old table dropped)."""
        row = conn.execute(sa.select(LEGACY_CHECKPOINT.c.state)).first()
        if row is None:
            LEGACY_CHECKPOINT.drop(conn)
            return {}
        try:
            parts = split(bytes(row[0]))
        except ValueError as exc:
            raise StoreError(
                f"alert store {self._safe_url()}: the whole-state checkpoint of an earlier "
                f"version (table {LEGACY_CHECKPOINT.name}) cannot be read ({exc}). To start "
                f"without state, drop that table (the alerts and their history are kept); to "
                f"keep the state, run the version that wrote it"
            ) from exc
        self._save_state(conn, StateDelta(parts, full=True))
        LEGACY_CHECKPOINT.drop(conn)
        log.info("alerting_state_migrated", store=self._safe_url(), parts=len(parts),
                 state_bytes=len(row[0]))  # fmt: skip
        return parts

    def _insert(self, table: sa.Table) -> Any:
        return (pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert)(table)

    def _record(self, conn: Connection, tr: AlertTransition) -> bool:
        stmt = self._insert(TRANSITIONS).values(
            transition_id=tr.transition_id, alert_id=tr.alert_id, device_id=tr.device_id,
            ts=tr.ts, payload=_ENCODER.encode(tr),
        ).on_conflict_do_nothing(index_elements=["transition_id"])  # fmt: skip
        # RETURNING, not rowcount: drivers disagree on rowcount for a skipped conflict
        return conn.execute(stmt.returning(TRANSITIONS.c.transition_id)).first() is not None

    def _apply(self, conn: Connection, tr: AlertTransition) -> None:
        if tr.tier_from == tr.tier_to:  # a reminder, or flapping marked or ended: the tier stays
            conn.execute(ALERTS.update().where(ALERTS.c.alert_id == tr.alert_id)
                         .values(flapping=tr.flapping))  # fmt: skip
            return
        if tr.tier_from == "none":
            conn.execute(ALERTS.insert().values(
                alert_id=tr.alert_id, device_id=tr.device_id, district=tr.district, kind=tr.kind,
                rule=tr.rule, category=tr.category, tier=tr.tier_to, value=tr.value,
                reason=tr.reason, flapping=tr.flapping, incident_id=tr.incident_id,
                opened_ts=tr.ts, updated_ts=tr.ts, closed_ts=None, active=True,
            ))  # fmt: skip
            return
        closing = tr.tier_to == "none"
        conn.execute(
            ALERTS.update()
            .where(ALERTS.c.alert_id == tr.alert_id)
            .values(
                tier=tr.tier_to, value=tr.value, reason=tr.reason, flapping=tr.flapping,
                incident_id=tr.incident_id, updated_ts=tr.ts, active=not closing,
                closed_ts=tr.ts if closing else None,
            )
        )  # fmt: skip

    def _save_state(self, conn: Connection, delta: StateDelta) -> None:
        if delta.full:
            conn.execute(STATE.delete())
        else:
            for keys in _chunks(sorted(delta.deleted)):
                conn.execute(STATE.delete().where(STATE.c.key.in_(keys)))
        if delta.parts:
            # Straight to the driver's executemany: thousands of small rows a checkpoint, and
            # the statement layer's per-row work would hold the interpreter from evaluation.
            now = time.time()
            rows = [(k, v, now) for k, v in delta.parts.items()]
            conn.exec_driver_sql(self._upsert_sql, rows)

    @functools.cached_property
    def _upsert_sql(self) -> str:
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        # Constant names; the values go as parameters.
        return (
            f"INSERT INTO {STATE.name} (key, part, written_at_s) VALUES ({mark}, {mark}, {mark}) "  # noqa: S608
            "ON CONFLICT (key) DO UPDATE SET part = excluded.part, "
            "written_at_s = excluded.written_at_s"
        )

    # -- reading --------------------------------------------------------------------------------

    def active_alerts(self) -> list[ActiveAlert]:
        """Every alert standing now, by device and rule."""
        query = sa.select(
            ALERTS.c.alert_id, ALERTS.c.device_id, ALERTS.c.district, ALERTS.c.rule,
            ALERTS.c.category, ALERTS.c.tier, ALERTS.c.opened_ts, ALERTS.c.updated_ts,
            ALERTS.c.flapping, ALERTS.c.incident_id,
        ).where(ALERTS.c.active).order_by(ALERTS.c.device_id, ALERTS.c.rule)  # fmt: skip
        with self._engine.connect() as conn:
            return [ActiveAlert(**row._mapping) for row in conn.execute(query)]

    def transitions(self, device_id: str | None = None, limit: int = 1000) -> list[AlertTransition]:
        """Stored transitions, oldest first (of one device, or all)."""
        query = sa.select(TRANSITIONS.c.payload).order_by(TRANSITIONS.c.ts).limit(limit)
        if device_id is not None:
            query = query.where(TRANSITIONS.c.device_id == device_id)
        with self._engine.connect() as conn:
            return [_DECODER.decode(row[0]) for row in conn.execute(query)]

    def count_closed(self) -> int:
        """How many alerts are history (closed)."""
        query = sa.select(sa.func.count()).select_from(ALERTS).where(sa.not_(ALERTS.c.active))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- silences -------------------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> int:
        """Store a silence; its id."""
        with self._engine.begin() as conn:
            result = conn.execute(SILENCES.insert().values(
                device_id=silence.device_id, district=silence.district, rule=silence.rule,
                starts_s=silence.starts_s, ends_s=silence.ends_s, comment=silence.comment,
            ))  # fmt: skip
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def silences(self, now_s: float | None = None) -> list[Silence]:
        """Stored silences; with ``now_s`` only those not yet ended."""
        query = sa.select(SILENCES).order_by(SILENCES.c.id)
        if now_s is not None:
            query = query.where(SILENCES.c.ends_s > now_s)
        with self._engine.connect() as conn:
            return [
                Silence(ends_s=r.ends_s, device_id=r.device_id, district=r.district, rule=r.rule,
                        starts_s=r.starts_s, comment=r.comment)
                for r in conn.execute(query)
            ]  # fmt: skip

    def silence_records(self, now_s: float | None = None) -> list[tuple[int, Silence]]:
        """Stored silences with their ids, oldest first; with ``now_s`` only those not ended."""
        query = sa.select(SILENCES).order_by(SILENCES.c.id)
        if now_s is not None:
            query = query.where(SILENCES.c.ends_s > now_s)
        with self._engine.connect() as conn:
            return [
                (int(r.id), Silence(ends_s=r.ends_s, device_id=r.device_id, district=r.district,
                                    rule=r.rule, starts_s=r.starts_s, comment=r.comment))
                for r in conn.execute(query)
            ]  # fmt: skip

    def expire_silence(self, silence_id: int, now_s: float) -> bool:
        """End a silence at ``now_s`` (as Alertmanager's expire: it stays listed with ``--all``);
        one that has not begun yet is deleted. Whether it was in force or to come."""
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(SILENCES.c.starts_s, SILENCES.c.ends_s).where(SILENCES.c.id == silence_id)
            ).one_or_none()
            if row is None or row.ends_s <= now_s:
                return False
            if row.starts_s >= now_s:
                conn.execute(SILENCES.delete().where(SILENCES.c.id == silence_id))
            else:
                conn.execute(
                    SILENCES.update().where(SILENCES.c.id == silence_id).values(ends_s=now_s)
                )
            return True

    def remove_silence(self, silence_id: int) -> bool:
        """Delete a silence; whether it existed."""
        with self._engine.begin() as conn:
            return bool(conn.execute(SILENCES.delete().where(SILENCES.c.id == silence_id)).rowcount)


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield list(keys[start : start + _CHUNK])


def _active_clash(exc: sa.exc.SQLAlchemyError) -> bool:
    text = str(getattr(exc, "orig", exc))
    return "one_active_alert_per_device_rule" in text or "alerts.device_id, alerts.rule" in text


def _sqlite_pragmas(lock_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would let a SAVEPOINT open (and its RELEASE
    # commit) a transaction of its own: SQLAlchemy begins them instead (its documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={lock_ms}")
    cursor.close()
