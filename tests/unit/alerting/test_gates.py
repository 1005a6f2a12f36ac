"""Skip gates (``_gates.py``): an idle rule may skip a reading only where no tier can raise.

Regression: a rule on a derived metric that no one raw metric gives (``fill_max_pct``, the
fullest of four bins) got a gate on the derived name itself, which no reading carries; a missing
gate metric lets the reading be skipped, so once idle the rule was never evaluated again.
"""

from __future__ import annotations

from pathlib import Path

from alerting import Engine
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import feed, rules, tiers

BINS = """
version: 1
kind: garbage
rules:
  - name: garbage.any_full
    category: overload
    metric: fill_max_pct
    tiers: [{tier: yellow, raise: {at_least: 90}, clear: {below: 60}}]
"""


def test_a_rule_on_the_fullest_bin_is_evaluated_after_an_idle_reading(tmp_path: Path) -> None:
    kiosk = Device("gb-jj-000001", DeviceKind.GARBAGE, "jiaojiang", 28.66, 121.42, 60.0, {})
    engine = Engine(rules(tmp_path, BINS), [kiosk])
    plan = {ev.rule.name: gates for ev, gates in engine._devices[kiosk.device_id].plan}
    assert plan["garbage.any_full"] is None  # no raw metric to gate on: never skipped
    bins = {"fill_kitchen_pct": 50.0, "fill_other_pct": 30.0}
    out = feed(engine, kiosk, [(0, bins), (1, bins | {"fill_other_pct": 95.0})])
    assert tiers(out) == [("none", "yellow")]
