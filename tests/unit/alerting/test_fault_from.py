"""``fault_from``: a failed read of the rule's metric while an alert stands at a tier raises a
higher one - a level sensor drowned by the water at the cover says so by failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import Engine, RuleError
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, feed, message, rules, tiers

OVERFLOW = """
version: 1
kind: drain
rules:
  - name: drain.overflow
    category: overflow
    metric: depth_below_ground_m
    tiers:
      - {tier: orange, raise: {at_most: 0.5}, clear: {above: 0.8}, count: 1}
      - tier: red
        raise: {at_most: 0.05}
        clear: {above: 0.3}
        fault_from: FROM
        dwell: 10m
        reason: water at the cover
"""
# ground 3.0, invert 0.5: depth below ground = 2.5 - level.


def _engine(tmp_path: Path, from_tier: str = "orange") -> tuple[Engine, Device]:
    dev = drain(ground_elev_m=3.0, invert_elev_m=0.5, diameter_m=1.0)
    return Engine(rules(tmp_path, OVERFLOW.replace("FROM", from_tier)), [dev]), dev


def test_a_sensor_failing_while_orange_stands_raises_red(tmp_path: Path) -> None:
    engine, dev = _engine(tmp_path)
    out = feed(engine, dev, [(0, {"level_m": 1.0, "flow_m3s": 0.2}),
                             (1, {"level_m": 2.2, "flow_m3s": 0.4})])  # fmt: skip
    assert tiers(out) == [("none", "orange")]
    [red] = feed(engine, dev, [(2, {"flow_m3s": 0.5})])  # level left out: the head is drowned
    assert (red.tier_from, red.tier_to) == ("orange", "red")
    assert "water at the cover" in red.reason
    assert "level_m read failed" in red.reason
    assert feed(engine, dev, [(3, {"flow_m3s": 0.5})]) == []  # one red, not one per reading
    # The sensor reads again, the water well below the cover: red clears after its dwell.
    assert feed(engine, dev, [(6, {"level_m": 2.1, "flow_m3s": 0.3})]) == []
    out = feed(engine, dev, [(13, {"level_m": 2.1, "flow_m3s": 0.3})])
    assert tiers(out) == [("red", "orange")]


def test_a_flagged_read_counts_as_failed(tmp_path: Path) -> None:
    engine, dev = _engine(tmp_path)
    feed(engine, dev, [(0, {"level_m": 2.2})])
    flagged = message(dev, 1, {"level_m": 0.0, "flow_m3s": 0.5},
                      quality={"level_m": "sensor_fault"})  # fmt: skip
    assert tiers(engine.on_telemetry(*flagged)) == [("orange", "red")]


def test_a_failed_read_without_a_standing_alert_raises_nothing(tmp_path: Path) -> None:
    engine, dev = _engine(tmp_path)
    assert feed(engine, dev, [(0, {"level_m": 1.0}), (1, {"flow_m3s": 0.5}),
                              (2, {"flow_m3s": 0.5})]) == []  # fmt: skip


def test_fault_from_must_name_a_lower_tier(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"field 'tiers\[1\].fault_from': red is not below red"):
        _engine(tmp_path, "red")
    with pytest.raises(RuleError, match=r"field 'tiers\[1\].fault_from': Input should be"):
        _engine(tmp_path, "purple")
