"""Flapping: one transition marks the onset, one the end; the sliding minute is state.

Time is injected as the readings' event time (and the minute slides the service makes from it,
``Engine.slide_flapping``), so nothing here waits or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from alerting import Engine, RuleSet
from alerting._state import META_DECODER, META_KEY
from telemetry_core import AlertTransition
from tests.unit.alerting.kit import MIN_MS, T0_MS, drain, message, rules, tiers

FLAP = """
version: 1
kind: drain
rules:
  - name: test.fill
    category: overload
    metric: fill_ratio
    repeat: 0s
    flapping: {window: 30m, changes: CHANGES}
    tiers:
      - {tier: yellow, raise: {above: 0.7}, clear: {below: 0.6}}
      - {tier: red, raise: {above: 1.0}, clear: {below: 0.9}}
"""
DEV = drain()


def _rules(tmp_path: Path, changes: int) -> RuleSet:
    return rules(tmp_path, FLAP.replace("CHANGES", str(changes)))


def run(engine: Engine, series: Iterable[tuple[float, float]]) -> list[AlertTransition]:
    """Feed ``(minute, fill)`` as the service does: slide the minute, then evaluate."""
    out: list[AlertTransition] = []
    for minute, fill in series:
        topic, msg = message(DEV, minute, {"fill_ratio": fill})
        out += engine.slide_flapping(msg.ts)
        out += engine.on_telemetry(topic, msg)
    return out


def _flips(n: int, start: float = 0, high: float = 1.2) -> list[tuple[float, float]]:
    return [(start + i, high if i % 2 == 0 else 0.5) for i in range(n)]


def test_the_onset_on_a_fall_is_one_transition_held_at_the_tier(tmp_path: Path) -> None:
    engine = Engine(_rules(tmp_path, 4), [DEV])
    out = run(engine, _flips(8))
    assert tiers(out) == [("none", "red"), ("red", "none"), ("none", "red"), ("red", "red")]
    onset = out[-1]
    assert onset.flapping
    assert not onset.notify
    assert onset.reason == "flapping: held at red"
    assert engine.active() == {(DEV.device_id, "test.fill"): "red"}


def test_the_onset_on_a_rise_is_the_rise_itself_marked_flapping(tmp_path: Path) -> None:
    engine = Engine(_rules(tmp_path, 3), [DEV])
    out = run(engine, _flips(6))
    assert tiers(out) == [("none", "red"), ("red", "none"), ("none", "red")]  # then held
    assert [t.flapping for t in out] == [False, False, True]
    assert not out[2].notify
    assert engine.active() == {(DEV.device_id, "test.fill"): "red"}


def test_the_minute_slide_releases_a_held_alert_to_its_real_tier(tmp_path: Path) -> None:
    engine = Engine(_rules(tmp_path, 4), [DEV])
    run(engine, _flips(8))  # flapping, held at red while the readings are low
    quiet = run(engine, [(8 + i, 0.5) for i in range(40)])
    [release] = quiet
    assert (release.tier_from, release.tier_to) == ("red", "none")
    assert not release.flapping
    assert release.notify  # people hear the real state once it has calmed
    assert release.ts % MIN_MS == 0  # at the minute the window slid, as a backtest would
    assert engine.active() == {}


def test_flapping_that_ends_at_the_held_tier_says_so_once(tmp_path: Path) -> None:
    engine = Engine(_rules(tmp_path, 4), [DEV])
    run(engine, _flips(7))  # flapping from the 4th change, and now red for real again
    assert engine.active() == {(DEV.device_id, "test.fill"): "red"}
    steady = run(engine, [(7 + i, 1.2) for i in range(40)])
    [ended] = steady
    assert (ended.tier_from, ended.tier_to) == ("red", "red")
    assert not ended.flapping
    assert ended.reason == "flapping ended: red stands"
    assert ended.notify


def test_a_silence_mutes_the_end_of_flapping_too(tmp_path: Path) -> None:
    from alerting import Silence

    silence = Silence(ends_s=(T0_MS + 120 * MIN_MS) / 1000, device_id=DEV.device_id)
    engine = Engine(_rules(tmp_path, 4), [DEV], silences=[silence])
    run(engine, _flips(7))
    [ended] = run(engine, [(7 + i, 1.2) for i in range(40)])
    assert not ended.notify


@pytest.mark.parametrize("cut", [8, 9, 20, 37])
def test_the_sliding_minute_survives_a_restart(tmp_path: Path, cut: int) -> None:
    ruleset = _rules(tmp_path, 4)
    series = [*_flips(8), *[(8 + i + 0.5, 0.5) for i in range(40)]]
    straight = run(Engine(ruleset, [DEV]), series)

    first = Engine(ruleset, [DEV])
    before = run(first, series[:cut])
    delta = first.delta()
    assert META_DECODER.decode(delta.parts[META_KEY]).flap_slide_ms % MIN_MS == 0
    resumed = Engine.restore_parts(delta.parts, ruleset, [DEV])
    after = run(resumed, series[cut:])
    assert before + after == straight  # the same transitions, the same ids
    assert any(t.tier_to == "none" and not t.flapping for t in straight[4:])
