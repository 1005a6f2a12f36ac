"""The rules file, as pydantic models: what a rule may say, checked field by field at load.

Semantic checks that span fields (a metric the kind lacks, tiers out of order, a clear condition
that can never hold) live in ``_rules.py``; this module only says what each field may hold.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerting._duration import DurationS

TierLevel = Literal["blue", "yellow", "orange", "red"]
Category = Literal["overload", "overflow", "exceedance", "facility", "device"]
RuleType = Literal["threshold", "silent", "stuck", "out_of_range", "offline", "missed_collection"]
COMPARATORS = ("above", "below", "at_least", "at_most")
RuleNameStr = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Compare(_Strict):
    above: float | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None

    def comparator(self) -> tuple[str, float] | None:
        """The one comparison this mapping makes, as ``(name, threshold)``."""
        given = [(n, v) for n in COMPARATORS if (v := getattr(self, n)) is not None]
        return given[0] if given else None

    @model_validator(mode="after")
    def _at_most_one(self) -> _Compare:
        if sum(getattr(self, n) is not None for n in COMPARATORS) > 1:
            raise ValueError(f"give one of {', '.join(COMPARATORS)}; use 'all:' for a range")
        return self


class Predict(_Strict):
    """True when a fit over ``window`` says ``metric`` reaches ``reaches`` within (or beyond)
    a horizon. With ``within`` a value already at the limit counts as reached (time 0)."""

    metric: str | None = None
    reaches: float
    direction: Literal["rising", "falling"] = "rising"
    within: DurationS | None = None
    beyond: DurationS | None = None
    window: DurationS = 600.0
    min_points: int = Field(4, ge=3, le=120)

    @model_validator(mode="after")
    def _one_horizon(self) -> Predict:
        if (self.within is None) == (self.beyond is None):
            raise ValueError("give exactly one of 'within' or 'beyond'")
        return self


class Rate(_Strict):
    """The fitted rate of change of ``metric`` per hour over ``window``."""

    metric: str | None = None
    above_per_h: float | None = None
    below_per_h: float | None = None
    window: DurationS = 600.0
    min_points: int = Field(3, ge=2, le=120)

    @model_validator(mode="after")
    def _one_bound(self) -> Rate:
        if (self.above_per_h is None) == (self.below_per_h is None):
            raise ValueError("give exactly one of 'above_per_h' or 'below_per_h'")
        return self


class Rain(_Strict):
    """The mean rain intensity over ``over`` at the ``nearest`` rain gauges."""

    above_mmh: float | None = None
    below_mmh: float | None = None
    over: DurationS = 1800.0
    nearest: int = Field(2, ge=1, le=10)

    @model_validator(mode="after")
    def _one_bound(self) -> Rain:
        if (self.above_mmh is None) == (self.below_mmh is None):
            raise ValueError("give exactly one of 'above_mmh' or 'below_mmh'")
        return self


class Capacity(_Compare):
    """The rain measured at the ``nearest`` gauges over ``over``, as a multiple of the critical
    intensity of a node's outgoing pipe (``i_crit = 360·capacity / (runoff_coeff·area)``, from
    the network file): above 1 the rain already falling will run the pipe full when it arrives.
    ``node: downstream`` looks at the pipe the node drains into (backwater from below)."""

    over: DurationS = 1800.0
    nearest: int = Field(2, ge=1, le=10)
    node: Literal["self", "downstream"] = "self"
    horizon: DurationS = 1800.0
    """How far ahead the load is expected (the catchment's response time), for the prediction."""
    unknown: Literal["never", "holds"] = "never"
    """A node without capacity, catchment or gauges: the tier never raises there (``never``),
    or this part is left out so the rest of the condition decides (``holds``)."""

    @model_validator(mode="after")
    def _one_bound(self) -> Capacity:
        if self.comparator() is None:
            raise ValueError("give one of above, below, at_least, at_most (times i_crit)")
        return self


class Head(_Strict):
    """The water surface a surcharged node is heading for, from the network file and the pipe's
    load: the latest measured water level at the node below (its ``level_m`` over its invert; an
    outfall's stage or crown) plus the friction head of the pipe between, ``L·S·(Q/Q_full)²``
    with ``Q/Q_full`` the rain at the ``nearest`` gauges over ``over`` as a multiple of the pipe's
    critical intensity (``load: rain``), or the larger of that and the measured flow over the
    pipe's capacity (``load: max``). True when that surface is within ``within_m`` of the ground
    (the cover)."""

    within_m: float = Field(ge=0.0, le=10.0)
    over: DurationS = 600.0
    nearest: int = Field(2, ge=1, le=10)
    load: Literal["rain", "max"] = "rain"
    max_age: DurationS = 900.0
    """How old the node below's level may be; older (or none yet): nothing is predicted."""
    unknown: Literal["never", "holds"] = "never"
    """A node whose pipe length, slope, capacity or catchment the network file does not give, or
    without gauges: the tier never raises there (``never``), or this part is left out
    (``holds``)."""


class Hgl(_Strict):
    """The steady hydraulic grade line the rain of ``ahead`` from now will set up: from the
    outfall's level (its stage or crown) up every pipe to this node, each pipe loaded with the
    rain forecast for its node (the ``nearest`` gauges' rain over ``over``, ``ahead`` from now,
    by the gauges' own nowcast, ``_nowcast.py``) over its critical intensity. True when it stands
    at least ``above_m`` above the ground here (negative: below it). A steady line overshoots
    the surface a short burst brings (the manholes store some of it), hence a positive margin."""

    above_m: float = Field(ge=-5.0, le=5.0)
    ahead: DurationS = Field(1200.0, ge=0.0, le=5400.0)
    over: DurationS = 600.0
    nearest: int = Field(2, ge=1, le=10)
    unknown: Literal["never", "holds"] = "never"
    """A node with a pipe on its way to the outfall the network file does not describe (length,
    slope, diameter, capacity, catchment), or an outfall without a level: ``never`` raises,
    ``holds`` leaves the part out."""


class Forecast(_Strict):
    """The network's hydraulic forecast (``_forecast.py``; docs/alerting.md, "The forecast"):
    SWMM, built from the network file, brought up to the latest issue on the rain the gauges
    measured and run on for an hour under their nowcast. True when it puts the water here within
    ``margin_m`` of the cover (0: at it, flooding) at some minute of the next ``within``.
    ``persist``: how long a gauge's rain goes on at its last ten minutes' mean where no up-wind
    gauge has measured it yet (0: it stops). The alert carries the time to the flood as its
    prediction."""

    within: DurationS = Field(3600.0, gt=0.0, le=3600.0)
    margin_m: float = Field(0.0, ge=-1.0, le=2.0)
    persist: DurationS = Field(0.0, ge=0.0, le=3600.0)
    max_age: DurationS = Field(600.0, gt=0.0)
    """How old the latest issue may be; older (or none): nothing is forecast."""
    expect: Literal["flood", "dry", "blind"] = "flood"
    """``dry`` turns the condition round, for a clear condition: true when no forecast (of
    this age) puts the water within ``margin_m`` of the cover in the next ``within``.
    ``blind``: true when the forecast cannot see this node's rain coming (no up-wind gauge
    measured it at the last issue, or no forecast stands), so that a rule on the measured
    state may decide where the forecast is blind and the forecast where it sees."""
    unknown: Literal["never", "holds"] = "never"
    """A node outside the modelled districts (the network file does not describe every pipe
    and catchment of its district, or names no gauge): ``never`` raises, ``holds`` leaves the
    part out."""


class Neighbour(_Compare):
    """The latest value of ``metric`` at the node downstream (or at any node upstream)."""

    metric: str
    max_age: DurationS = 900.0


class Condition(_Compare):
    """Everything given must hold: a comparison of the rule's metric (or ``metric``), a
    prediction, a rate, rain, rain against the pipe's capacity, the predicted head or grade
    line, the
    neighbouring nodes, each
    condition under ``all`` and at least one under ``any``."""

    metric: str | None = None
    predict: Predict | None = None
    rate: Rate | None = None
    rain: Rain | None = None
    capacity: Capacity | None = None
    head: Head | None = None
    hgl: Hgl | None = None
    forecast: Forecast | None = None
    downstream: Neighbour | None = None
    upstream: Neighbour | None = None
    all: list[Condition] = []
    any: list[Condition] = []

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        parts = (self.predict, self.rate, self.rain, self.capacity, self.head, self.hgl,
                 self.forecast, self.downstream, self.upstream)  # fmt: skip
        nested = self.all or self.any
        if self.comparator() is None and all(p is None for p in parts) and not nested:
            raise ValueError(
                "a condition needs a comparison, predict, rate, rain, capacity, head, hgl, "
                "forecast, all or any"
            )
        return self


class Tier(_Strict):
    """One tier of a rule: raise and clear conditions, how long, and the minimum dwell."""

    tier: TierLevel
    raise_: Condition = Field(alias="raise")
    clear: Condition | None = None
    for_s: DurationS | None = Field(None, alias="for")
    count: int | None = Field(None, ge=1, le=10_000)
    clear_for: DurationS = 0.0
    dwell: DurationS = 0.0
    reason: str = ""
    fault_from: TierLevel | None = None
    """A failed read of the rule's metric (left out of a reading, or flagged ``sensor_fault``)
    while the alert stands at this tier or higher raises this one: a level sensor drowned by
    the water it measures says most by failing on that metric. Cleared by its clear condition,
    as ever, once the sensor reads again."""

    @model_validator(mode="after")
    def _for_or_count(self) -> Tier:
        if self.for_s is not None and self.count is not None:
            raise ValueError("give 'for' (a duration) or 'count' (readings in a row), not both")
        return self


class Selector(_Strict):
    """Which devices a rule applies to; every part given must match."""

    districts: list[str] = []
    ids: list[str] = []
    attributes: dict[str, float | str] = {}


class Flapping(_Strict):
    """Kapacitor-style: ``changes`` tier changes within ``window`` mark an alert flapping; it
    stops flapping when the window holds no more than ``changes // 2``."""

    window: DurationS = 3600.0
    changes: int = Field(6, ge=2, le=1000)


class Missed(_Strict):
    """Collection windows (local hours, Asia/Shanghai) and how full a bin left after one is."""

    hours: list[int] = [7, 19]
    grace: DurationS = 3600.0
    above_pct: float = 40.0


class Rule(_Strict):
    """One rule of a rules file."""

    name: RuleNameStr
    kind: str | None = None
    type: RuleType = "threshold"
    category: Category
    description: str = ""
    select: Selector = Selector()
    metric: str | None = None
    metrics: list[str] = []
    tiers: list[Tier] = []
    tier: TierLevel = "yellow"
    after_intervals: float = Field(3.0, gt=0)
    readings: int = Field(30, ge=2, le=100_000)
    missed: Missed = Missed()
    repeat: DurationS = 14_400.0
    flapping: Flapping = Flapping()
    notify: bool = True


class RuleFile(_Strict):
    """A rules file: a version, the default kind of its rules, and the rules."""

    version: Literal[1]
    kind: str | None = None
    rules: list[Rule]
