"""Incremental checkpoints: only what changed is encoded, and the parts add up to the state."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import Engine, Network, RuleSet, default_rules_dir, load_rules, network_from_dict
from alerting._snapshot import assemble, split
from alerting._state import DECODER, DEVICE_DECODER, META_KEY, StateDelta
from telemetry_core import DeviceKind, kind_spec
from telemetry_core.registry import Device
from tests.unit.alerting.kit import (
    CANONICAL,
    MIN_MS,
    T0_MS,
    apply,
    drain,
    feed,
    message,
    rules,
    same_state,
)
from tests.unit.alerting.kit import status as status_message

FILL = """
version: 1
kind: drain
rules:
  - name: drain.fill
    category: overload
    metric: fill_ratio
    flapping: {window: 30m, changes: 4}
    tiers:
      - {tier: yellow, raise: {above: 0.7}, clear: {below: 0.6}, for: 5m}
      - {tier: red, raise: {above: 1.0}, clear: {below: 0.9}, count: 3}
"""


@pytest.fixture
def fill_rules(tmp_path: Path) -> RuleSet:
    return rules(tmp_path, FILL)


def _fleet(n: int) -> list[Device]:
    return [drain(f"dr-jj-{i:06d}", node=f"jj-J{i:03d}") for i in range(n)]


def _devices(delta: StateDelta) -> list[str]:
    return sorted(k for k in delta.parts if k.startswith("d:"))


def test_a_delta_holds_only_the_devices_touched_since_the_last(fill_rules: RuleSet) -> None:
    fleet = _fleet(50)
    engine = Engine(fill_rules, fleet)
    for dev in fleet:
        feed(engine, dev, [(0, {"fill_ratio": 0.3})])
    first = engine.delta()
    assert first.full
    assert len(_devices(first)) == 50
    assert META_KEY in first.parts
    feed(engine, fleet[7], [(1, {"fill_ratio": 1.2})])
    feed(engine, fleet[9], [(1, {"fill_ratio": 0.2})])
    second = engine.delta()
    assert not second.full
    assert _devices(second) == ["d:dr-jj-000007", "d:dr-jj-000009"]
    assert set(second.parts) - {META_KEY} <= {*_devices(second), "n:jj-J007", "n:jj-J009"}
    assert engine.delta().parts.keys() == {META_KEY}  # nothing touched since
    part = DEVICE_DECODER.decode(second.parts["d:dr-jj-000007"])
    assert part.last_ts == T0_MS + MIN_MS
    assert part.states["drain.fill"].counts == [0, 1]  # red counts its first of three


def test_parts_applied_one_delta_after_another_restore_the_state_exactly(
    fill_rules: RuleSet,
) -> None:
    fleet = _fleet(6)
    live = Engine(fill_rules, fleet)
    store: dict[str, bytes] = {}
    fills = [0.5, 0.8, 1.2, 1.3, 1.1, 0.95, 0.5, 0.4, 1.4, 0.2]
    for minute, fill in enumerate(fills):  # a checkpoint after each minute, of a few devices
        for k, dev in enumerate(fleet[: 2 + minute % 4]):
            feed(live, dev, [(minute, {"fill_ratio": fill + 0.01 * k})])
        apply(store, live.delta())
    resumed = Engine.restore_parts(store, fill_rules, fleet)
    assert same_state(resumed, live)
    assert resumed.active() == live.active()
    assert resumed.state_bytes == sum(len(v) for v in store.values())
    later = [(20 + i, {"fill_ratio": 1.3}) for i in range(4)]
    carried_on = feed(resumed, fleet[0], later)
    assert carried_on  # the red raise counts on from the restored state
    assert carried_on == feed(live, fleet[0], later)  # same transitions, same ids


def test_a_state_that_clears_is_dropped_and_a_device_that_leaves_is_deleted(
    fill_rules: RuleSet,
) -> None:
    one, two = _fleet(2)
    engine = Engine(fill_rules, [one, two])
    store: dict[str, bytes] = {}
    feed(engine, one, [(m, {"fill_ratio": 1.3}) for m in range(3)])  # red
    feed(engine, two, [(0, {"fill_ratio": 0.3})])
    apply(store, engine.delta())
    assert "drain.fill" in DEVICE_DECODER.decode(store["d:dr-jj-000000"]).states
    feed(engine, one, [(3 + m, {"fill_ratio": 0.1}) for m in range(2)])  # cleared
    engine.slide_flapping(T0_MS)
    engine.slide_flapping(T0_MS + 90 * MIN_MS)  # the flapping window forgets the changes
    apply(store, engine.delta())
    # nothing left to carry: the row no longer holds the red state (restored fresh)
    assert DEVICE_DECODER.decode(store["d:dr-jj-000000"]).states == {}
    assert same_state(Engine.restore_parts(store, fill_rules, [one, two]), engine)

    without_two = Engine.restore_parts(store, fill_rules, [one])  # the device left the fleet
    delta = without_two.delta()
    assert delta.deleted == {"d:dr-jj-000001"}
    apply(store, delta)
    assert "d:dr-jj-000001" not in store
    assert without_two.state_bytes == sum(len(v) for v in store.values())


def _network() -> Network:
    def node(name: str, downstream: str | None, lon: float) -> dict[str, object]:
        return {"id": name, "district": "jiaojiang", "kind": "outfall" if downstream is None
                else "junction", "lat": 28.68, "lon": lon, "invert_elev_m": 1.0,
                "ground_elev_m": 3.0, "max_depth_m": 2.0, "pipe_diameter_m": 0.5,
                "downstream": downstream}  # fmt: skip

    return network_from_dict({
        "version": 1,
        "nodes": [node("jj-J001", "jj-J002", 121.44), node("jj-J002", "OUT", 121.441),
                  node("OUT", None, 121.442)],
        "devices": {"dr-jj-000001": "jj-J001", "dr-jj-000002": "jj-J002"},
        "rain_gauges": {"rg-jj-000001": {"lat": 28.68, "lon": 121.44}},
    })  # fmt: skip


def test_node_values_rain_statuses_and_incidents_travel_in_their_parts() -> None:
    devices = [drain("dr-jj-000001", node="jj-J001"), drain("dr-jj-000002", node="jj-J002")]
    gauge = Device("rg-jj-000001", DeviceKind.RAIN, "jiaojiang", 28.68, 121.44, 60.0, {})
    ruleset = load_rules(default_rules_dir())
    live = Engine(ruleset, [*devices, gauge], _network())
    store: dict[str, bytes] = {}
    for minute in range(30):
        for dev in devices:
            feed(live, dev, [(minute, {"fill_ratio": 0.9 + minute * 0.02, "level_m": 0.5})])
        feed(live, gauge, [(minute, {"rain_mmh": 40.0 + minute})])
        live.on_status(*status_message(devices[1], minute + 0.5, "online"))
        live.tick((T0_MS + minute * MIN_MS) / 1000)
        apply(store, live.delta())
    snap = DECODER.decode(live.snapshot())
    for exercised in (snap.node_values, snap.rain, snap.status, snap.incidents):
        assert exercised
    resumed = Engine.restore_parts(store, ruleset, [*devices, gauge], _network())
    assert same_state(resumed, live)
    assert CANONICAL.encode(assemble(split(live.snapshot()))) == CANONICAL.encode(snap)


def test_an_engine_restored_from_a_whole_snapshot_writes_it_all_once(fill_rules: RuleSet) -> None:
    fleet = _fleet(4)
    engine = Engine(fill_rules, fleet)
    for dev in fleet:
        feed(engine, dev, [(m, {"fill_ratio": 1.3}) for m in range(2)])
    restored = Engine.restore(engine.snapshot(), fill_rules, fleet)
    delta = restored.delta()
    assert delta.full
    assert same_state(Engine.restore_parts(delta.parts, fill_rules, fleet), engine)
    assert not restored.delta().full


def test_a_part_that_cannot_be_read_is_named(fill_rules: RuleSet) -> None:
    with pytest.raises(ValueError, match="'d:dr-jj-000000'"):
        Engine.restore_parts({"d:dr-jj-000000": b"\x01junk"}, fill_rules, _fleet(1))
    with pytest.raises(ValueError, match="unknown kind of part"):
        assemble({"x:what": b""})


def test_a_delta_not_handed_over_is_merged_into_the_next() -> None:
    older = StateDelta({"m": b"1", "d:a": b"a1", "d:b": b"b1"}, frozenset({"d:c"}))
    newer = StateDelta({"m": b"2", "d:a": b"a2"}, frozenset({"d:b"}))
    merged = older.merged(newer)
    assert merged.parts == {"m": b"2", "d:a": b"a2"}
    assert merged.deleted == {"d:b", "d:c"}
    assert not merged.full
    full = StateDelta({"m": b"0"}, full=True).merged(newer)
    assert full.full
    assert full.parts == {"m": b"2", "d:a": b"a2"}


RULES = load_rules(default_rules_dir())
METRICS = sorted(kind_spec("drain").metrics)
DEVICES = [drain("dr-jj-000001", node="jj-J001"), drain("dr-jj-000002", node="jj-J002")]
STEP = st.tuples(
    st.integers(0, 1),
    st.floats(0, 5, allow_nan=False),
    st.dictionaries(st.sampled_from(METRICS), st.floats(-1, 5, allow_nan=False), min_size=1,
                    max_size=5),
    st.booleans(),
)  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, max_size=60))
def test_any_stream_checkpointed_at_any_points_restores_exactly(
    steps: list[tuple[int, float, dict[str, float], bool]],
) -> None:
    engine = Engine(RULES, DEVICES)
    store: dict[str, bytes] = {}
    minute = 0.0
    for who, gap, values, checkpoint in steps:
        minute += gap
        topic, msg = message(DEVICES[who], minute, values)
        engine.slide_flapping(msg.ts)
        engine.on_telemetry(topic, msg)
        engine.tick(msg.ts / 1000)
        if checkpoint:
            apply(store, engine.delta())
    apply(store, engine.delta())
    assert same_state(Engine.restore_parts(store, RULES, DEVICES), engine)


def test_parts_encoded_ahead_are_the_same_and_a_device_touched_again_is_encoded_again(
    fill_rules: RuleSet,
) -> None:
    fleet = _fleet(5)
    ahead, plain = Engine(fill_rules, fleet), Engine(fill_rules, fleet)
    for engine in (ahead, plain):
        for dev in fleet:
            feed(engine, dev, [(0, {"fill_ratio": 0.8})])
        engine.delta()
        for dev in fleet:
            feed(engine, dev, [(1, {"fill_ratio": 1.2})])
    assert ahead.encode_pending(3) == 2
    assert ahead.encode_pending(10) == 0
    for engine in (ahead, plain):
        feed(engine, fleet[0], [(2, {"fill_ratio": 1.3})])  # after its part was encoded
    early, late = ahead.delta(), plain.delta()
    assert early == late
    assert DEVICE_DECODER.decode(early.parts["d:dr-jj-000000"]).last_ts == T0_MS + 2 * MIN_MS


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(STEP, st.integers(0, 2), st.integers(0, 1)), max_size=60))
def test_encoding_ahead_at_any_points_checkpoints_what_a_plain_seal_does(
    steps: list[tuple[tuple[int, float, dict[str, float], bool], int, int]],
) -> None:
    """The service encodes changed devices between batches (``encode_ahead``): whatever it
    encodes ahead and whatever changes after, each delta equals the one a seal alone makes."""
    ahead, plain = Engine(RULES, DEVICES), Engine(RULES, DEVICES)
    minute = 0.0
    for (who, gap, values, checkpoint), limit, keep in steps:
        minute += gap
        for engine in (ahead, plain):
            topic, msg = message(DEVICES[who], minute, values)
            engine.slide_flapping(msg.ts)
            engine.on_telemetry(topic, msg)
            engine.tick(msg.ts / 1000)
        ahead.encode_pending(limit, keep=keep)
        if checkpoint:
            assert ahead.delta() == plain.delta()
    assert ahead.delta() == plain.delta()


def test_encoding_ahead_leaves_the_seal_the_devices_asked_for(fill_rules: RuleSet) -> None:
    fleet = _fleet(10)
    engine = Engine(fill_rules, fleet)
    for dev in fleet:
        feed(engine, dev, [(0, {"fill_ratio": 0.8})])
    assert engine.encode_pending(4, keep=3) == 6
    assert engine.encode_pending(100, keep=3) == 3
    assert engine.encode_pending(100, keep=3) == 3  # nothing more ahead: three for the seal
    assert len(_devices(engine.delta())) == 10
