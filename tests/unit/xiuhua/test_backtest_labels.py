"""Which ground-truth label each default rule is scored against in `xiuhua alerting backtest`."""

from __future__ import annotations

import pytest

from alerting import default_rules_dir, load_rules
from xiuhua.alerting_backtest import label_of


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ("drain.overflow", "overflow"),
        ("garbage.full.kitchen", "bin_full"),
        ("device.stuck.rain", "fault:stuck"),
        ("device.blocked.rain", "fault:stuck"),
        ("drain.low_battery", "fault:battery"),
        ("rain.low_battery", "fault:battery"),
        ("garbage.power", "fault:battery"),
        ("toilet.power", "fault:battery"),
    ],
)
def test_a_default_rule_is_scored_against_the_label_it_warns_of(rule: str, label: str) -> None:
    assert rule in {r.name for r in load_rules(default_rules_dir())}
    assert label_of(rule, {}) == label


def test_an_override_wins_and_an_unknown_rule_has_no_label() -> None:
    assert label_of("drain.overflow", {"drain.overflow": "surcharge"}) == "surcharge"
    assert label_of("toilet.crowding", {}) is None
