"""The state store: alerts (active and history), transitions, silences and the engine checkpoint.

SQLAlchemy Core over SQLite (the default, a file next to the service) or PostgreSQL, with the
same interface. ``checkpoint(state, transitions)`` writes the engine's snapshot and the alert
changes of the transitions since the last one **in one transaction**, so after a crash the
store holds a checkpoint and exactly the alerts it implies. One active alert per (device, rule)
is the database's own rule: a partial unique index over the active rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from alerting._hygiene import Silence
from alerting.errors import StoreError
from telemetry_core.schema import AlertTransition

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
CHECKPOINT = sa.Table(
    "engine_checkpoint", _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("transitions", sa.BigInteger, nullable=False),
    sa.Column("written_at_s", sa.Float, nullable=False),
)  # fmt: skip
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

    def __init__(self, url: str = "sqlite:///alerting.db", *, echo: bool = False) -> None:
        self.url = url
        try:
            self._engine: Engine = sa.create_engine(url, echo=echo, future=True)
            if self._engine.dialect.name == "sqlite":
                sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            _META.create_all(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"alert store {self._safe_url()}: cannot open: {exc}") from exc

    def _safe_url(self) -> str:
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return f"{self.url!r} (not a database URL such as sqlite:///alerting.sqlite)"

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    # -- checkpoint -----------------------------------------------------------------------------

    def checkpoint(self, state: bytes, transitions: Sequence[AlertTransition]) -> None:
        """Write ``state`` and apply ``transitions`` atomically; replayed ids are ignored."""
        try:
            with self._engine.begin() as conn:
                for tr in transitions:
                    if self._record(conn, tr):
                        self._apply(conn, tr)
                self._save_state(conn, state, len(transitions))
        except sa.exc.IntegrityError as exc:
            raise StoreError(
                f"alert store {self._safe_url()}: a second active alert for one (device, rule) "
                f"was refused by the database: {exc.orig}"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"alert store {self._safe_url()}: checkpoint failed: {exc}") from exc

    def load(self) -> bytes | None:
        """The last checkpointed engine state, or ``None`` on a fresh store."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    sa.select(CHECKPOINT.c.state).where(CHECKPOINT.c.id == 1)
                ).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"alert store {self._safe_url()}: load failed: {exc}") from exc
        return None if row is None else bytes(row[0])

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
        if tr.tier_from == tr.tier_to:
            return  # a reminder: nothing changes
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

    def _save_state(self, conn: Connection, state: bytes, n: int) -> None:
        stmt = self._insert(CHECKPOINT).values(
            id=1, state=state, transitions=n, written_at_s=time.time()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"state": stmt.excluded.state, "transitions": CHECKPOINT.c.transitions + n,
                  "written_at_s": stmt.excluded.written_at_s},
        )  # fmt: skip
        conn.execute(stmt)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
