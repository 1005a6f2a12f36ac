"""The missed-collection rule: a bin still full an hour after a collection hour (07:00, 19:00).

Engine clock is the readings' own (T0 = 2026-08-10 00:00 local, +08:00), so minute 7 * 60 is
07:00 local, the morning round.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import Engine, RuleSet
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import MIN_MS, T0_MS, feed, rules, tiers

RULE = """
version: 1
kind: garbage
rules:
  - name: garbage.missed_collection
    type: missed_collection
    category: facility
    tier: orange
    missed: {hours: [7, 19], grace: 1h, above_pct: 40}
"""
BIN = Device(
    "gs-jj-000001", DeviceKind.GARBAGE, "jiaojiang", 28.66, 121.42, 60.0,
    {"bin_kitchen_l": 240.0, "bin_recyclable_l": 240.0, "bin_hazardous_l": 60.0,
     "bin_other_l": 240.0},
)  # fmt: skip
CATS = ("kitchen", "recyclable", "hazardous", "other")


@pytest.fixture
def missed(tmp_path: Path) -> RuleSet:
    return rules(tmp_path, RULE)


def _bins(kitchen: float, others: float = 10.0) -> dict[str, float]:
    return {f"fill_{c}_pct": kitchen if c == "kitchen" else others for c in CATS}


def _every_5_min(
    start_min: int, end_min: int, fill_at: dict[int, float]
) -> list[tuple[float, dict[str, float]]]:
    out: list[tuple[float, dict[str, float]]] = []
    fill = 0.0
    for m in range(start_min, end_min, 5):
        fill = fill_at.get(m, fill)
        out.append((m, _bins(fill)))
    return out


def test_a_bin_not_emptied_by_the_round_is_a_missed_collection(missed: RuleSet) -> None:
    engine = Engine(missed, [BIN])
    # Seen from 06:00 at 80 %; the 07:00 round does not come; judged at 08:00.
    out = feed(engine, BIN, _every_5_min(6 * 60, 9 * 60, {6 * 60: 80.0}))
    assert tiers(out) == [("none", "orange")]
    assert out[0].ts == T0_MS + 8 * 60 * MIN_MS
    assert "kitchen" in out[0].reason


def test_a_bin_emptied_by_the_round_is_no_alert(missed: RuleSet) -> None:
    engine = Engine(missed, [BIN])
    out = feed(engine, BIN, _every_5_min(6 * 60, 9 * 60, {6 * 60: 80.0, 7 * 60 + 20: 5.0}))
    assert out == []


def test_a_window_first_seen_after_its_grace_is_not_judged(missed: RuleSet) -> None:
    # Regression: an engine (or a bin) that starts at 00:00 judged the 19:00 window it never
    # saw, and raised orange from one reading of a bin that may have been emptied and refilled.
    engine = Engine(missed, [BIN])
    assert feed(engine, BIN, _every_5_min(0, 7 * 60, {0: 101.0})) == []
    # The next window, seen from its start, is judged as usual.
    later = feed(engine, BIN, _every_5_min(7 * 60, 9 * 60, {7 * 60: 101.0}))
    assert tiers(later) == [("none", "orange")]


def test_a_bin_back_from_an_outage_mid_window_keeps_its_tier_until_a_window_is_seen(
    missed: RuleSet,
) -> None:
    engine = Engine(missed, [BIN])
    first = feed(engine, BIN, _every_5_min(6 * 60, 9 * 60, {6 * 60: 80.0}))
    assert tiers(first) == [("none", "orange")]
    # Silent from 09:00 to 21:30 (the 19:00 round unseen): nothing is decided about it.
    assert feed(engine, BIN, _every_5_min(21 * 60 + 30, 23 * 60, {21 * 60 + 30: 5.0})) == []
    assert engine.active() == {(BIN.device_id, "garbage.missed_collection"): "orange"}
    # The next morning's window, seen from its start with the bin low: collected, cleared.
    cleared = feed(engine, BIN, _every_5_min(30 * 60, 33 * 60, {30 * 60: 5.0}))
    assert tiers(cleared) == [("orange", "none")]
