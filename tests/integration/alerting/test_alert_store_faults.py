"""The store's faults on a real SQLite file and a real PostgreSQL: a lock waited out, a refused
transition set aside, a refused state ending the process; and the old whole-state row migrated."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from alerting import AlertStore, Engine, RuleSet, StoreError
from alerting._checkpoint import Checkpointer, Sealed
from alerting._consumer import Backoff
from alerting._store import ALERTS, LEGACY_CHECKPOINT, STATE
from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    series,
    service_subprocess,
    start_service,
    write_config,
)
from tests.unit.alerting.kit import drain, feed, rules, same_state
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration

FILL = """
version: 1
kind: drain
rules:
  - name: drain.fill
    category: overload
    metric: fill_ratio
    tiers:
      - {tier: red, raise: {above: 1.0}, clear: {below: 0.9}, count: 2}
"""


@pytest.fixture
def fill_rules(tmp_path: Path) -> RuleSet:
    return rules(tmp_path, FILL)


def _old_blob(engine: Engine) -> bytes:
    """The whole state as the previous version wrote it: no flapping minute in the snapshot,
    no reason in a rule state (arrays one field shorter)."""
    snap = msgspec.msgpack.decode(engine.snapshot())
    snap[3] = {key: state[:15] for key, state in snap[3].items()}
    return msgspec.msgpack.encode(snap[:11])


def test_an_old_whole_state_row_is_migrated_into_parts(store_url: str, fill_rules: RuleSet) -> None:
    devices = [drain(), drain("dr-jj-000002")]
    engine = Engine(fill_rules, devices)
    feed(engine, devices[0], [(m, {"fill_ratio": 1.3}) for m in range(2)])  # red
    feed(engine, devices[1], [(0, {"fill_ratio": 1.3})])  # one of two
    old = _old_blob(engine)
    store = AlertStore(store_url)
    with store._engine.begin() as conn:
        LEGACY_CHECKPOINT.create(conn)
        conn.execute(LEGACY_CHECKPOINT.insert().values(id=1, state=old, transitions=1,
                                                       written_at_s=0.0))  # fmt: skip
    with capture_logs() as logs:
        parts = store.load()
    assert parts is not None
    assert sorted(parts) == ["d:dr-jj-000001", "d:dr-jj-000002", "m", "n:jj-J001"]
    assert [e["parts"] for e in logs if e["event"] == "alerting_state_migrated"] == [4]
    resumed = Engine.restore_parts(parts, fill_rules, devices)
    assert same_state(resumed, Engine.restore(old, fill_rules, devices))
    assert resumed.active() == engine.active()
    assert feed(resumed, devices[1], [(1, {"fill_ratio": 1.3})])  # the count carried over
    with store._engine.connect() as conn:
        assert not sa.inspect(conn).has_table(LEGACY_CHECKPOINT.name)
    assert store.load() == parts  # from the new table now
    store.close()


def test_an_unreadable_old_row_stops_the_load_naming_the_database_and_what_to_do(
    store_url: str,
) -> None:
    store = AlertStore(store_url)
    with store._engine.begin() as conn:
        LEGACY_CHECKPOINT.create(conn)
        conn.execute(LEGACY_CHECKPOINT.insert().values(id=1, state=b"\x93junk", transitions=0,
                                                       written_at_s=0.0))  # fmt: skip
    with pytest.raises(StoreError) as caught:
        store.load()
    message = str(caught.value)
    assert store.name in message
    assert "engine_checkpoint" in message
    assert "drop that table" in message
    with store._engine.connect() as conn:
        assert sa.inspect(conn).has_table(LEGACY_CHECKPOINT.name)  # left as it was
    store.close()


class _Acker:
    def __init__(self) -> None:
        self.acks: list[tuple[int, list[int]]] = []

    def ack_later(self, generation: int, mids: list[int]) -> None:
        self.acks.append((generation, mids))

    def confirmed_below(self, seq: int) -> bool:
        return seq >= 0  # the broker has every publish at once


def _checkpointer(store: AlertStore, acker: _Acker) -> Checkpointer:
    return Checkpointer(store, acker, Backoff(0.01, 0.05), confirmed=threading.Event(),
                        stop=threading.Event())  # fmt: skip


@contextlib.contextmanager
def _locked(store_url: str, store: AlertStore) -> Iterator[None]:
    """The state table locked by another connection for as long as the block runs."""
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sa.make_url(store_url).database or "", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with store._engine.connect() as other:
        other.execute(sa.text("BEGIN"))
        other.execute(sa.text(f"LOCK TABLE {STATE.name} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            other.execute(sa.text("ROLLBACK"))


def test_a_lock_held_elsewhere_is_waited_out_and_nothing_acked_meanwhile(
    store_url: str, fill_rules: RuleSet
) -> None:
    store = AlertStore(store_url, lock_timeout_s=0.05)
    engine = Engine(fill_rules, [drain()])
    opened = feed(engine, drain(), [(m, {"fill_ratio": 1.3}) for m in range(2)])
    sealed = Sealed(engine.delta(), tuple(opened), ((0, [7]),), 0, 1, 0.0)
    acker = _Acker()
    checkpointer = _checkpointer(store, acker)
    done: list[bool] = []
    with _locked(store_url, store):
        worker = threading.Thread(target=lambda: done.append(checkpointer.complete(sealed)))
        worker.start()
        wait_until(lambda: checkpointer.store_errors >= 2, timeout_s=30)
        assert acker.acks == []
    worker.join(30)
    assert done == [True]
    assert acker.acks == [(0, [7])]
    assert [a.tier for a in store.active_alerts()] == ["red"]
    store.close()


def _refuse_state_writes(store_url: str, store: AlertStore) -> None:
    """A trigger that refuses every new state row: a permanent fault in the state itself."""
    refuse = "'injected: state refused'"
    if store_url.startswith("sqlite"):
        trigger = (
            f"CREATE TRIGGER refuse_state BEFORE INSERT ON {STATE.name} "
            f"BEGIN SELECT RAISE(ABORT, {refuse}); END"
        )
        statements = [trigger]
    else:
        function = (
            "CREATE FUNCTION refuse_state() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION {refuse} USING ERRCODE = 'check_violation'; END $$"
        )
        trigger = (
            f"CREATE TRIGGER refuse_state BEFORE INSERT ON {STATE.name} FOR EACH ROW "
            "EXECUTE FUNCTION refuse_state()"
        )
        statements = [function, trigger]
    with store._engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_a_state_the_database_refuses_is_permanent_not_retried(
    store_url: str, fill_rules: RuleSet
) -> None:
    store = AlertStore(store_url)
    _refuse_state_writes(store_url, store)
    engine = Engine(fill_rules, [drain()])
    opened = feed(engine, drain(), [(m, {"fill_ratio": 1.3}) for m in range(2)])
    acker = _Acker()
    checkpointer = _checkpointer(store, acker)
    sealed = Sealed(engine.delta(), tuple(opened), ((0, [1]),), 0, 1, 0.0)
    with pytest.raises(StoreError, match="injected: state refused") as caught:
        checkpointer.complete(sealed)
    assert not caught.value.retryable
    assert store.name in str(caught.value)
    assert checkpointer.store_errors == 1
    assert acker.acks == []
    assert store.active_alerts() == []  # nothing of the checkpoint was written
    store.close()


def _open_alert_elsewhere(db: Path, device_id: str, rule: str) -> None:
    """An active alert the engine does not know of (a state lost, a restored backup)."""
    store = AlertStore(f"sqlite:///{db}")
    with store._engine.begin() as conn:
        conn.execute(ALERTS.insert().values(
            alert_id="a-from-elsewhere", device_id=device_id, district="jiaojiang", kind="drain",
            rule=rule, category="overload", tier="yellow", value=0.8, reason="", flapping=False,
            incident_id=None, opened_ts=0, updated_ts=0, closed_ts=None, active=True,
        ))  # fmt: skip
    store.close()


def test_the_service_dead_letters_a_refused_transition_and_goes_on(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "state.db"
    make_fleet(fleet)
    _open_alert_elsewhere(db, "dr-jj-000000", "test.fill")
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    collector = Collector(mosquitto.host, mosquitto.port, client_id="refusal-collector")
    publisher = Publisher(mosquitto.host, mosquitto.port)
    service = start_service(config)
    try:
        t0 = int(time.time() * 1000) - 30 * MIN_MS
        publisher.publish(series("dr-jj-000000", t0, [1.2]))  # opens red: refused by the store
        publisher.publish(series("dr-jj-000001", t0, [1.2, 0.5]))  # fine
        wait_until(lambda: len(collector.dead_letters()) >= 1, timeout_s=60)
        [letter] = collector.dead_letters()
        assert letter["reason"] == "store_refused"
        assert str(db) in str(letter["detail"])
        assert "second active alert" in str(letter["detail"])
        wait_until(lambda: service.counters.evaluated >= 3 and service.backlog == 0,
                   timeout_s=60)  # fmt: skip
        publisher.publish(series("dr-jj-000001", t0 + 2 * MIN_MS, [1.2], seq0=2))
        wait_until(lambda: len(collector.unique()) >= 4, timeout_s=60)
        wait_until(lambda: service.backlog == 0, timeout_s=60)  # acks still flow
        assert service.dead_thread() is None
    finally:
        service.stop()
        publisher.close()
        collector.close()
    store = AlertStore(f"sqlite:///{db}")
    active = {(a.device_id, a.alert_id) for a in store.active_alerts()}
    assert ("dr-jj-000000", "a-from-elsewhere") in active
    assert any(d == "dr-jj-000001" for d, _ in active)
    store.close()


def test_the_service_ends_with_exit_70_naming_the_database_when_the_state_is_refused(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db, log = tmp_path / "fleet.csv", tmp_path / "state.db", tmp_path / "alerting.log"
    make_fleet(fleet)
    url = f"sqlite:///{db}"
    store = AlertStore(url)
    _refuse_state_writes(url, store)
    store.close()
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    child = service_subprocess(config, log)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        t0 = int(time.time() * 1000) - 30 * MIN_MS
        publish_until_exit = threading.Event()

        def keep_publishing() -> None:  # until the service is subscribed and has a checkpoint due
            seq = 0
            while not publish_until_exit.is_set():
                publisher.publish(series("dr-jj-000001", t0 + seq * MIN_MS, [0.5], seq0=seq))
                seq += 1
                publish_until_exit.wait(0.2)

        feeder = threading.Thread(target=keep_publishing, daemon=True)
        feeder.start()
        try:
            code = child.wait(timeout=120)
        finally:
            publish_until_exit.set()
            feeder.join(10)
    finally:
        if child.poll() is None:
            child.kill()
        publisher.close()
    assert code == 70
    lines = [msgspec.json.decode(line) for line in log.read_bytes().splitlines()
             if line.startswith(b"{")]  # fmt: skip
    [fatal] = [e for e in lines if e.get("event") == "checkpoint_store_fatal"]
    assert str(db) in fatal["store"]
    assert "injected: state refused" in fatal["error"]
    assert any(e.get("event") == "thread_died" for e in lines)
