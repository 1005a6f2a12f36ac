"""Interval analysis of conditions (what the rules loader's clear checks stand on)."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from alerting._model import Condition
from alerting._satisfy import Interval, alternatives, comparison, within_ranges

OPS = ("above", "below", "at_least", "at_most")
values = st.sampled_from([-1.0, 0.0, 0.5, 0.7, 1.0])  # few, so that ends often coincide
intervals = st.builds(comparison, st.sampled_from(OPS), values) | st.builds(
    Interval, values, values, st.booleans(), st.booleans()
)


@given(intervals, intervals, st.sampled_from([-1.5, -1.0, -0.2, 0.0, 0.5, 0.6, 0.7, 1.0, 2.0]))
def test_an_intersection_holds_exactly_the_values_both_hold(
    a: Interval, b: Interval, x: float
) -> None:
    assert (x in (a & b)) == (x in a and x in b)


@given(intervals)
def test_empty_means_no_value(a: Interval) -> None:
    probes = [-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 0.6, 0.7, 0.85, 1.0, 2.0]
    if a.empty:
        assert not any(x in a for x in probes)


def _cond(text: str) -> Condition:
    return Condition.model_validate(yaml.safe_load(text))


def test_all_intersects_any_joins_and_other_parts_do_not_narrow() -> None:
    boxes = alternatives(
        _cond("{all: [{at_least: 0.2}], any: [{below: 0.5}, {metric: level_m, above: 1}]}"),
        "fill_ratio",
    )
    assert boxes is not None
    assert [sorted(b) for b in boxes] == [["fill_ratio"], ["fill_ratio", "level_m"]]
    assert 0.3 in boxes[0]["fill_ratio"]
    assert 0.6 not in boxes[0]["fill_ratio"]
    assert alternatives(_cond("{all: [{below: 0.2}, {above: 0.5}]}"), "fill_ratio") == []
    fit = "{predict: {reaches: 2.0, within: 60m, window: 10m}}"
    assert alternatives(_cond(fit), "fill_ratio") == [{}]


def test_ranges_narrow_what_can_hold() -> None:
    boxes = alternatives(_cond("{any: [{below: -1}, {above: 0.5}]}"), "level_m")
    assert boxes is not None
    left = within_ranges(boxes, lambda m: (-0.5, 30.0) if m == "level_m" else None)
    assert len(left) == 1
    assert 0.6 in left[0]["level_m"]
    assert 31.0 not in left[0]["level_m"]
