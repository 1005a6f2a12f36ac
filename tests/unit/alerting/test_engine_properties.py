"""Hostile and shuffled input never breaks the engine, and replays change nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import Engine, default_rules_dir, load_rules
from telemetry_core import kind_spec
from tests.unit.alerting.kit import drain, message, toilet

RULES = load_rules(default_rules_dir())
DEVICES = [drain(), toilet()]
METRICS = sorted(set(kind_spec("drain").metrics) | set(kind_spec("toilet").metrics))
FLAGS = st.sampled_from(["good", "suspect", "out_of_range", "stuck", "spike_filtered",
                         "sensor_fault", "made_up"])  # fmt: skip
VALUES = st.floats(allow_nan=False, allow_infinity=False, width=64)
READING = st.tuples(
    st.integers(0, 1),
    st.floats(0, 600, allow_nan=False),
    st.dictionaries(st.sampled_from(METRICS), VALUES, min_size=1, max_size=8),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(METRICS), FLAGS, max_size=3)),
    st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(READING, max_size=40))
def test_any_stream_is_evaluated_and_a_replay_adds_nothing(stream: list[tuple]) -> None:  # type: ignore[type-arg]
    engine = Engine(RULES, DEVICES)
    first = []
    for who, minute, values, quality, historical in stream:
        msg = message(DEVICES[who], minute, values, quality=quality, historical=historical)
        first += engine.on_telemetry(*msg)
        first += engine.tick(msg[1].ts / 1000.0)
    for t in first:
        assert t.tier_from != t.tier_to or t.reason == "reminder" or t.reason.startswith("flapping")
    snapshot = engine.snapshot()
    replayed = []
    for who, minute, values, quality, historical in stream:  # redelivered: same ts, same data
        replayed += engine.on_telemetry(*message(DEVICES[who], minute, values, quality=quality,
                                                 historical=historical))  # fmt: skip
    assert replayed == []
    assert Engine.restore(snapshot, RULES, DEVICES).snapshot() == snapshot
