"""The alert store on SQLite and on a real PostgreSQL: one interface, the same guarantees."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerting import AlertStore, Engine, RuleSet, Silence
from alerting._state import StateDelta
from alerting._store import ALERTS, REFUSALS
from telemetry_core import AlertTransition
from telemetry_core.registry import Device
from tests.unit.alerting.kit import MIN_MS, T0_MS, drain, feed, rules, same_state

pytestmark = pytest.mark.integration

FILL = """
version: 1
kind: drain
rules:
  - name: drain.fill
    category: overload
    metric: fill_ratio
    tiers:
      - {tier: yellow, raise: {above: 0.7}, clear: {below: 0.6}, for: 5m}
      - {tier: red, raise: {above: 1.0}, clear: {below: 0.9}, count: 3}
"""


@pytest.fixture
def store(store_url: str) -> Iterator[AlertStore]:
    s = AlertStore(store_url)
    yield s
    s.close()


@pytest.fixture
def fill_rules(tmp_path: Path) -> RuleSet:
    return rules(tmp_path, FILL)


def _raise_red(engine: Engine, start: float = 0) -> list[AlertTransition]:
    return feed(engine, drain(), [(start + i, {"fill_ratio": 1.2}) for i in range(3)])


def _restored(store: AlertStore, ruleset: RuleSet, devices: list[Device]) -> Engine:
    parts = store.load()
    assert parts is not None
    return Engine.restore_parts(parts, ruleset, devices)


def test_a_checkpoint_holds_state_and_alerts_and_ignores_replays(
    store: AlertStore, fill_rules: RuleSet
) -> None:
    assert store.load() is None
    engine = Engine(fill_rules, [drain()])
    opened = _raise_red(engine)
    delta = engine.delta()
    assert store.checkpoint(delta, opened) == []
    assert store.checkpoint(delta, opened) == []  # a replay after a crash: same ids
    active = store.active_alerts()
    assert [(a.device_id, a.rule, a.tier) for a in active] == [
        ("dr-jj-000001", "drain.fill", "red")
    ]
    assert same_state(_restored(store, fill_rules, [drain()]), engine)
    closed = feed(engine, drain(), [(10 + i, {"fill_ratio": 0.1}) for i in range(2)])
    store.checkpoint(engine.delta(), closed)
    assert store.active_alerts() == []
    assert store.count_closed() == 1
    assert [t.transition_id for t in store.transitions()] == [
        t.transition_id for t in opened + closed
    ]


def test_the_database_refuses_two_active_alerts_and_the_rest_of_the_checkpoint_is_written(
    store: AlertStore, fill_rules: RuleSet
) -> None:
    first = _raise_red(Engine(fill_rules, [drain()]))
    store.checkpoint(StateDelta({"m": b"a"}, full=True), first)
    engine = Engine(fill_rules, [drain(), drain("dr-jj-000002")])
    other = _raise_red(engine, start=100)  # another episode id for the same (device, rule)
    other += feed(engine, drain("dr-jj-000002"), [(100 + i, {"fill_ratio": 1.2}) for i in range(3)])
    [(refused, why)] = store.checkpoint(engine.delta(), other)
    assert refused == other[0]
    assert "second active alert" in why
    assert store.name in why  # names the database
    assert [a.device_id for a in store.active_alerts()] == ["dr-jj-000001", "dr-jj-000002"]
    assert same_state(_restored(store, fill_rules, [drain(), drain("dr-jj-000002")]), engine)
    with store._engine.connect() as conn:
        rows = conn.execute(sa.select(REFUSALS.c.transition_id, REFUSALS.c.reason)).all()
    assert [r.transition_id for r in rows] == [refused.transition_id]


def test_concurrent_openings_leave_exactly_one_active_alert(
    store_url: str, fill_rules: RuleSet
) -> None:
    episodes = [_raise_red(Engine(fill_rules, [drain()]), start=10 * i) for i in range(6)]
    stores = [AlertStore(store_url) for _ in episodes]
    refusals: list[str] = []
    barrier = threading.Barrier(len(episodes))

    def open_one(s: AlertStore, transitions: list[AlertTransition]) -> None:
        barrier.wait()
        refused = s.checkpoint(StateDelta({"m": b"x"}), transitions)
        refusals.extend(why for _, why in refused)

    threads = [
        threading.Thread(target=open_one, args=pair) for pair in zip(stores, episodes, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with stores[0]._engine.connect() as conn:
        active = conn.execute(sa.select(sa.func.count()).select_from(ALERTS).where(ALERTS.c.active))
        assert active.scalar_one() == 1
    assert len(refusals) == len(episodes) - 1
    for s in stores:
        s.close()


def test_silences_by_device_district_or_rule_with_an_end(store: AlertStore) -> None:
    a = store.add_silence(Silence(ends_s=200.0, device_id="dr-jj-000001", comment="pump work"))
    store.add_silence(Silence(ends_s=100.0, district="jiaojiang"))
    store.add_silence(Silence(ends_s=300.0, rule="drain.fill"))
    assert len(store.silences()) == 3
    assert [s.rule for s in store.silences(now_s=150.0)] == [None, "drain.fill"]
    assert store.remove_silence(a)
    assert not store.remove_silence(a)
    assert [s.rule for s in store.silences(now_s=150.0)] == ["drain.fill"]


def test_a_restart_from_the_store_neither_re_alerts_nor_forgets(
    store_url: str, fill_rules: RuleSet
) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    before = feed(engine, dev, [(i, {"fill_ratio": 0.8}) for i in range(3)])  # 2 of 5 minutes
    store = AlertStore(store_url)
    store.checkpoint(engine.delta(), before)
    store.close()

    reopened = AlertStore(store_url)
    resumed = _restored(reopened, fill_rules, [dev])
    after = feed(resumed, dev, [(3 + i, {"fill_ratio": 0.8}) for i in range(3)])
    assert [(t.tier_from, t.tier_to, t.ts) for t in after] == [
        ("none", "yellow", T0_MS + 5 * MIN_MS)
    ]
    reopened.checkpoint(resumed.delta(), after)
    again = _restored(reopened, fill_rules, [dev])
    assert feed(again, dev, [(6 + i, {"fill_ratio": 0.8}) for i in range(5)]) == []  # no re-alert
    reopened.close()
