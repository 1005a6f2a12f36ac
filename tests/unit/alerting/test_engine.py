"""The engine's tier semantics, in event time, with no clock and no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import Engine, RuleSet, Silence
from telemetry_core import AlertTransition, decode, encode
from tests.unit.alerting.kit import (
    MIN_MS,
    T0_MS,
    drain,
    feed,
    reading,
    rules,
    same_state,
    status,
    tiers,
)

FILL = """
version: 1
kind: drain
rules:
  - name: drain.fill
    category: overload
    metric: fill_ratio
    flapping: {window: 30m, changes: 4}
    repeat: 1h
    tiers:
      - {tier: yellow, raise: {above: 0.7}, clear: {below: 0.6}, for: 5m}
      - {tier: red, raise: {above: 1.0}, clear: {below: 0.9}, count: 3, dwell: 10m}
"""


@pytest.fixture
def fill_rules(tmp_path: Path) -> RuleSet:
    return rules(tmp_path, FILL)


def _series(*values: float, start: float = 0) -> list[tuple[float, dict[str, float]]]:
    return [(start + i, {"fill_ratio": v}) for i, v in enumerate(values)]


def test_a_duration_must_hold_in_event_time(fill_rules: RuleSet) -> None:
    dev = drain()
    out = feed(Engine(fill_rules, [dev]), dev, _series(0.8, 0.8, 0.8, 0.8, 0.8, 0.8))
    assert tiers(out) == [("none", "yellow")]
    assert out[0].ts == T0_MS + 5 * MIN_MS  # the reading five minutes after the first one
    assert out[0].rule == "drain.fill"
    assert out[0].category == "overload"
    assert out[0].value == pytest.approx(0.8)


def test_a_dip_resets_the_duration(fill_rules: RuleSet) -> None:
    dev = drain()
    out = feed(Engine(fill_rules, [dev]), dev, _series(0.8, 0.8, 0.8, 0.5, 0.8, 0.8, 0.8, 0.8))
    assert out == []


def test_a_count_needs_readings_in_a_row_and_latches_lower_tiers(fill_rules: RuleSet) -> None:
    dev = drain()
    out = feed(Engine(fill_rules, [dev]), dev, _series(1.2, 1.2, 1.2))
    assert tiers(out) == [("none", "red")]


def test_hysteresis_and_clearing_a_higher_tier_leaves_a_lower_one(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    values = [1.2, 1.2, 1.2] + [0.95] * 12 + [0.85] * 11 + [0.65, 0.55]
    out = feed(engine, dev, _series(*values))
    # red holds in the hysteresis band (0.95 > 0.9), clears at 0.85 once its 10 min dwell is
    # over, leaving yellow (latched with it); yellow clears below 0.6, not at 0.65.
    assert tiers(out) == [("none", "red"), ("red", "yellow"), ("yellow", "none")]
    assert out[1].ts == T0_MS + 15 * MIN_MS
    assert out[2].ts == T0_MS + 27 * MIN_MS
    assert len({t.alert_id for t in out}) == 1  # one episode
    assert engine.active() == {}


def test_the_same_input_gives_the_same_transitions_and_ids(fill_rules: RuleSet) -> None:
    dev = drain()
    series = _series(*([1.2] * 3 + [0.5] * 12))
    first = feed(Engine(fill_rules, [dev]), dev, series)
    second = feed(Engine(fill_rules, [dev]), dev, series)
    assert first == second
    assert len({t.transition_id for t in first}) == len(first)


def test_duplicate_and_late_readings_change_nothing(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    assert tiers(feed(engine, dev, _series(1.2, 1.2, 1.2))) == [("none", "red")]
    # redelivered (same ts) and late (older ts) low readings cannot clear or re-raise
    again = feed(engine, dev, [(2, {"fill_ratio": 0.1}), (1, {"fill_ratio": 0.1})] * 20)
    assert again == []
    assert engine.active() == {("dr-jj-000001", "drain.fill"): "red"}


def test_flagged_readings_hold_state_and_suspect_ones_never_raise(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    for minute in range(5):
        flag = "sensor_fault" if minute % 2 else "suspect"
        assert engine.on_telemetry(*reading(dev, minute, quality={"fill_ratio": flag},
                                            fill_ratio=1.5)) == []  # fmt: skip
    assert tiers(feed(engine, dev, _series(1.5, 1.5, 1.5, start=5))) == [("none", "red")]
    # a suspect low reading may clear once the dwell is over
    out = engine.on_telemetry(*reading(dev, 30, quality={"fill_ratio": "suspect"}, fill_ratio=0.1))
    assert tiers(out) == [("red", "none")]


def test_a_backfill_updates_state_without_a_stale_notification(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    out: list[AlertTransition] = []
    for minute in range(3):
        out += engine.on_telemetry(*reading(dev, minute, historical=True, fill_ratio=1.3))
    assert tiers(out) == [("none", "red")]
    assert out[0].historical
    assert not out[0].notify


def test_a_backfill_behind_live_readings_changes_nothing_and_is_counted(
    fill_rules: RuleSet,
) -> None:
    # As an edge agent sends them after an outage: the live reading at once, then the backlog
    # of the outage, older, marked historical. The present is known; the past cannot rewrite it.
    dev = drain()
    engine, live_only = Engine(fill_rules, [dev]), Engine(fill_rules, [dev])
    for e in (engine, live_only):
        assert e.on_telemetry(*reading(dev, 10, fill_ratio=0.2)) == []
    out: list[AlertTransition] = []
    for minute in range(1, 10):
        out += engine.on_telemetry(*reading(dev, minute, historical=True, fill_ratio=1.3))
    assert out == []
    assert engine.late_readings == 9
    assert same_state(engine, live_only)
    # The next live readings go on from the present as if the backfill had not come.
    later = feed(engine, dev, [(11 + i, {"fill_ratio": 1.3}) for i in range(3)])
    assert tiers(later) == [("none", "red")]
    assert later[0].notify


def test_flapping_holds_the_alert_and_stops_notifying(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    minute, out = 0.0, []
    for _ in range(4):  # each cycle: 3 readings red, dwell 10 min low, clear
        for v in [1.3] * 3 + [0.2] * 11:
            out += engine.on_telemetry(*reading(dev, minute, fill_ratio=v))
            minute += 1
    assert [t.flapping for t in out][:3] == [False, False, False]
    assert any(t.flapping for t in out)
    assert all(not t.notify for t in out if t.flapping)
    assert engine.active() == {("dr-jj-000001", "drain.fill"): "red"}  # held while flapping
    later = feed(engine, dev, [(minute + 60 + i, {"fill_ratio": 0.2}) for i in range(3)])
    assert tiers(later) == [("red", "none")]
    assert not later[0].flapping
    assert later[0].notify


def test_a_silence_mutes_until_it_ends(fill_rules: RuleSet) -> None:
    dev = drain()
    ends_s = (T0_MS + 16 * MIN_MS) / 1000
    engine = Engine(fill_rules, [dev], silences=[Silence(ends_s=ends_s, district="jiaojiang")])
    out = feed(engine, dev, _series(*([1.3] * 3 + [0.2] * 12 + [1.3] * 10)))
    assert tiers(out) == [("none", "red"), ("red", "none"), ("none", "red")]
    assert [t.notify for t in out] == [False, False, True]
    with pytest.raises(ValueError, match="names a device_id"):
        Silence(ends_s=1.0)


def test_a_standing_alert_is_repeated_after_its_interval(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    feed(engine, dev, _series(1.3, 1.3, 1.3))
    assert engine.tick((T0_MS + 30 * MIN_MS) / 1000) == []
    reminder = engine.tick((T0_MS + 63 * MIN_MS) / 1000)
    assert [(t.tier_from, t.tier_to, t.reason, t.notify) for t in reminder] == [
        ("red", "red", "reminder", True)
    ]


DEVICE = """
version: 1
rules:
  - {name: device.silent, kind: "*", type: silent, category: device, tier: yellow,
     after_intervals: 5}
  - {name: device.offline, kind: "*", type: offline, category: device, tier: orange}
  - {name: device.stuck, kind: drain, type: stuck, category: device, readings: 5,
     metrics: [level_m]}
  - {name: device.range, kind: drain, type: out_of_range, category: device, metrics: [level_m]}
"""


def test_silent_and_never_heard_devices(tmp_path: Path) -> None:
    quiet, heard = drain("dr-jj-000001"), drain("dr-jj-000002")
    engine = Engine(rules(tmp_path, DEVICE), [quiet, heard])
    engine.tick(T0_MS / 1000)
    engine.on_telemetry(*reading(heard, 1, level_m=0.1))
    assert engine.tick((T0_MS + 5 * MIN_MS) / 1000) == []
    out = engine.tick((T0_MS + 6.5 * MIN_MS) / 1000)
    assert [(t.device_id, t.tier_to, t.reason) for t in out] == [
        ("dr-jj-000001", "yellow", "never heard from for 6 min"),
        ("dr-jj-000002", "yellow", "silent for 6 min"),
    ]
    back = engine.on_telemetry(*reading(heard, 7, level_m=0.1))
    assert [(t.device_id, t.rule, t.tier_to) for t in back] == [
        ("dr-jj-000002", "device.silent", "none")
    ]
    assert engine.tick((T0_MS + 8 * MIN_MS) / 1000) == []  # no repeat of the standing one


def test_a_backfill_from_inside_a_silence_clears_it_no_earlier_than_it_was_raised(
    tmp_path: Path,
) -> None:
    # Regression (found scoring the outage scenario): the backlog's first reading, from minute
    # 2, cleared a silence raised at minute 6.5 with its own time, so the clear came before
    # the raise and the map, which shows each device's latest transition by time, kept it silent.
    dev = drain()
    engine = Engine(rules(tmp_path, DEVICE), [dev])
    engine.on_telemetry(*reading(dev, 1, level_m=0.1))
    [raised] = engine.tick((T0_MS + 6.5 * MIN_MS) / 1000)
    back = engine.on_telemetry(*reading(dev, 2, historical=True, level_m=0.1))
    assert [(t.rule, t.tier_to) for t in back] == [("device.silent", "none")]
    assert back[0].ts == raised.ts
    assert back[0].historical
    assert not back[0].notify
    assert back[0].transition_id != raised.transition_id


def test_offline_stuck_and_out_of_range(tmp_path: Path) -> None:
    dev = drain()
    engine = Engine(rules(tmp_path, DEVICE), [dev])
    assert tiers(engine.on_status(*status(dev, 0, "offline"))) == [("none", "orange")]
    assert tiers(engine.on_status(*status(dev, 1, "online"))) == [("orange", "none")]
    stuck = feed(engine, dev, [(2 + i, {"level_m": 0.42}) for i in range(5)])
    assert [(t.rule, t.tier_to) for t in stuck] == [("device.stuck", "yellow")]
    moving = engine.on_telemetry(*reading(dev, 8, level_m=0.43))
    assert [(t.rule, t.tier_to) for t in moving] == [("device.stuck", "none")]
    bad = engine.on_telemetry(*reading(dev, 9, level_m=99.0))
    assert [(t.rule, t.tier_to, t.value) for t in bad] == [("device.range", "yellow", 99.0)]


def test_a_transition_survives_the_wire(fill_rules: RuleSet) -> None:
    dev = drain()
    out = feed(Engine(fill_rules, [dev]), dev, _series(1.3, 1.3, 1.3))
    assert decode(encode(out[0]), AlertTransition) == out[0]


def test_a_restart_mid_duration_neither_re_alerts_nor_forgets(fill_rules: RuleSet) -> None:
    dev = drain()
    engine = Engine(fill_rules, [dev])
    feed(engine, dev, _series(1.3, 1.3, 1.3))  # red standing
    feed(engine, dev, [(3, {"fill_ratio": 0.95})])
    blob = engine.snapshot()
    again = Engine.restore(blob, fill_rules, [dev])
    assert again.active() == engine.active()
    # still red; clear needs the dwell counted from minute 2, not from the restart
    assert feed(again, dev, [(4, {"fill_ratio": 0.95})]) == []
    out = feed(again, dev, [(12, {"fill_ratio": 0.8})])
    assert tiers(out) == [("red", "yellow")]

    half = Engine(fill_rules, [dev])
    feed(half, dev, _series(0.8, 0.8, 0.8, start=100))  # three minutes of a five-minute "for"
    resumed = Engine.restore(half.snapshot(), fill_rules, [dev])
    done = feed(resumed, dev, _series(0.8, 0.8, 0.8, start=103))
    assert tiers(done) == [("none", "yellow")]
    assert done[0].ts == T0_MS + 105 * MIN_MS
