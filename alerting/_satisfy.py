"""Which values can make a condition hold: interval analysis of its comparisons, for checks.

A condition's comparisons (``above``, ``below``, ``at_least``, ``at_most`` on its own metric or
another) are turned into the set of values that satisfy them, in disjunctive form: a list of
*alternatives*, each a box (metric -> interval) that all its parts allow. ``all`` intersects,
``any`` joins. Parts that are not comparisons (a fit, rain, the network, the forecast) may hold
or not: they do not narrow the set. So an empty set proves the condition can never hold; a
non-empty one proves nothing more than that its comparisons do not forbid it.

The rules loader uses it to refuse a clear condition that can never hold (contradictory parts,
values outside the metric's range) and one that can hold while its raise does (inverted
hysteresis), however deep in ``any`` and ``all`` the offending part sits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from alerting._model import Condition

MAX_ALTERNATIVES: Final = 256
"""Past this many alternatives the analysis gives up and says "may hold" (never a false error)."""

RangeOf = Callable[[str], tuple[float, float] | None]
"""A metric's physical range, ``None`` if unknown."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Values from ``lo`` to ``hi``, each end open (excluded) or closed."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = True
    hi_open: bool = True

    @property
    def empty(self) -> bool:
        """No value lies in it."""
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))

    def __contains__(self, x: float) -> bool:
        above = x > self.lo or (x == self.lo and not self.lo_open)
        below = x < self.hi or (x == self.hi and not self.hi_open)
        return above and below

    def __and__(self, other: Interval) -> Interval:
        # The tighter end of each side; at a tie an open end is the tighter.
        lo, lo_open = max((self.lo, self.lo_open), (other.lo, other.lo_open))
        hi, hi_closed = min((self.hi, not self.hi_open), (other.hi, not other.hi_open))
        return Interval(lo, hi, lo_open, not hi_closed)

    def __str__(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


def comparison(op: str, value: float) -> Interval:
    """The values ``op value`` allows."""
    if op == "above":
        return Interval(lo=value)
    if op == "at_least":
        return Interval(lo=value, lo_open=False)
    if op == "below":
        return Interval(hi=value)
    if op == "at_most":
        return Interval(hi=value, hi_open=False)
    raise ValueError(f"not a comparison: {op}")


Box = dict[str, Interval]
"""One alternative: each constrained metric's interval (a metric not named is unconstrained)."""


def alternatives(cond: Condition, metric: str) -> list[Box] | None:
    """The boxes of values that can satisfy ``cond`` (its comparisons only; ``metric`` is the
    rule's own, for parts that name none); ``None`` when there are too many to tell."""
    boxes: list[Box] = [{}]
    cmp = cond.comparator()
    if cmp is not None:
        boxes = [{cond.metric or metric: comparison(*cmp)}]
    for sub in cond.all:
        inner = alternatives(sub, metric)
        if inner is None:
            return None
        boxes = _product(boxes, inner)
        if len(boxes) > MAX_ALTERNATIVES:
            return None
    if cond.any:
        options: list[Box] = []
        for sub in cond.any:
            inner = alternatives(sub, metric)
            if inner is None:
                return None
            options.extend(inner)
        boxes = _product(boxes, options)
        if len(boxes) > MAX_ALTERNATIVES:
            return None
    return [b for b in boxes if not any(i.empty for i in b.values())]


def within_ranges(boxes: list[Box], range_of: RangeOf) -> list[Box]:
    """``boxes`` narrowed to each metric's physical range; those left with a value."""
    out = []
    for box in boxes:
        narrowed = {}
        for m, interval in box.items():
            bounds = range_of(m)
            narrowed[m] = interval if bounds is None else interval & _closed(*bounds)
        if not any(i.empty for i in narrowed.values()):
            out.append(narrowed)
    return out


def _closed(lo: float, hi: float) -> Interval:
    return Interval(lo, hi, lo_open=False, hi_open=False)


def _product(left: list[Box], right: list[Box]) -> list[Box]:
    out = []
    for a in left:
        for b in right:
            box = dict(a)
            for m, interval in b.items():
                box[m] = box[m] & interval if m in box else interval
            if not any(i.empty for i in box.values()):
                out.append(box)
    return out
