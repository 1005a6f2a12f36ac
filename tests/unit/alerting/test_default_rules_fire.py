"""Every shipped default rule, on streams that must raise it and streams that must not.

For each tier of each rule: a stream that raises it at its documented tier after its documented
duration or count (and not a reading sooner), the same stream one reading short, a stream just
inside the limit, and the clear (after the dwell; not inside the hysteresis band). The engine
runs in event time: the readings' own timestamps (one a minute from ``T0_MS``) and ``tick`` are
its only clock, so each stream is its clock.

The figures are the documented ones (docs/alerting.md, "The default rules", and each rule's
description), written out here rather than read from the YAML, so a threshold, count or dwell
changed in the rules alone fails; ``test_every_default_rule_is_covered_here`` fails for a rule
(or a tier, a watched metric) added without a case here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerting import Engine, default_rules_dir, load_rules
from alerting._derived import extractor
from telemetry_core import AlertTransition, DeviceKind
from telemetry_core.kinds import kind_spec
from telemetry_core.registry import Device
from tests.unit.alerting.kit import MIN_MS, T0_MS, drain, feed, message, rules, status, tiers

DEFAULTS = load_rules(default_rules_dir())
RANK = {"none": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}
LAT, LON = 28.68, 121.44


def _toilet(toilet_class: int) -> Device:
    attrs: dict[str, float | str] = {"stalls": 10.0, "toilet_class": float(toilet_class)}
    return Device(f"wc-jj-00000{toilet_class}", DeviceKind.TOILET, "jiaojiang", LAT, LON, 60.0,
                  attrs)  # fmt: skip


def _gauge(k: int = 1, lon: float = LON) -> Device:
    return Device(f"rg-jj-00000{k}", DeviceKind.RAIN, "jiaojiang", LAT, lon, 60.0, {})


DRAIN = drain()
TOILET = {k: _toilet(k) for k in (1, 2, 3)}
T1 = TOILET[1]
GARBAGE = Device("gb-jj-000001", DeviceKind.GARBAGE, "jiaojiang", LAT, LON, 60.0, {})
GAUGE = _gauge()
BY_KIND = {"drain": DRAIN, "toilet": TOILET[1], "garbage": GARBAGE, "rain": GAUGE}


@dataclass(frozen=True, slots=True)
class Case:
    """One tier of a threshold rule: the reading field it watches and four values of it."""

    rule: str
    tier: str
    device: Device
    field: str
    hot: float
    """Raises the tier (at the limit for ``at_least``/``at_most``, just past it otherwise)."""
    inside: float
    """Just inside the limit: never raises this tier, however long it lasts."""
    band: float | None
    """Between the tier's clear and raise (hysteresis): the tier holds; ``None``: no band."""
    normal: float
    """Clears every tier of the rule."""
    count: int = 1
    """Readings in a row to raise (1: at once) ..."""
    for_min: int = 0
    """... or minutes held."""
    dwell_min: int = 0
    value: float | None = None
    """The transition's value when the metric is derived (``hot`` otherwise)."""

    @property
    def raise_minute(self) -> int:
        """The minute of the reading that raises, the stream starting at minute 0."""
        return self.for_min if self.for_min else self.count - 1

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.tier}"


CASES: tuple[Case, ...] = (
    # rule, tier, device, reading field, hot, inside, band, normal; readings in a row or minutes
    # held; dwell. drain: GB 50014 fill, GB/T 31962-2015 grade B, the 3.6 V lithium cell
    Case("drain.overload", "yellow", DRAIN, "fill_ratio", 0.75, 0.7, 0.65, 0.3,
         for_min=5, dwell_min=10),
    Case("drain.overload", "orange", DRAIN, "fill_ratio", 1.2, 1.0, 0.95, 0.3,
         count=2, dwell_min=10),
    Case("drain.cod", "yellow", DRAIN, "cod_mgl", 501.0, 500.0, 470.0, 200.0, for_min=15),
    Case("drain.cod", "orange", DRAIN, "cod_mgl", 1001.0, 1000.0, 950.0, 200.0, for_min=15),
    Case("drain.nh3n", "yellow", DRAIN, "nh3n_mgl", 45.5, 45.0, 42.0, 20.0, for_min=15),
    Case("drain.nh3n", "orange", DRAIN, "nh3n_mgl", 90.5, 90.0, 85.0, 20.0, for_min=15),
    Case("drain.low_battery", "blue", DRAIN, "battery_v", 3.29, 3.3, 3.32, 3.6, count=5),
    Case("drain.low_battery", "yellow", DRAIN, "battery_v", 3.09, 3.1, 3.12, 3.6, count=5),
    # toilets: GB/T 17217-1998 by class, crowding, consumables, fault_code bits, the 24 V supply
    Case("toilet.nh3.class1", "yellow", T1, "nh3_mgm3", 0.31, 0.3, 0.27, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.nh3.class1", "orange", T1, "nh3_mgm3", 0.61, 0.6, 0.55, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.nh3.class2", "yellow", TOILET[2], "nh3_mgm3", 1.01, 1.0, 0.9, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.nh3.class2", "orange", TOILET[2], "nh3_mgm3", 2.01, 2.0, 1.8, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.nh3.class3", "yellow", TOILET[3], "nh3_mgm3", 3.01, 3.0, 2.7, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.nh3.class3", "orange", TOILET[3], "nh3_mgm3", 6.01, 6.0, 5.5, 0.1,
         for_min=10, dwell_min=15),
    Case("toilet.h2s", "yellow", T1, "h2s_mgm3", 0.011, 0.01, 0.009, 0.002,
         for_min=10, dwell_min=15),
    Case("toilet.h2s", "orange", T1, "h2s_mgm3", 0.021, 0.02, 0.018, 0.002,
         for_min=10, dwell_min=15),
    # occupancy_ratio = occupied_stalls / stalls, of 10 stalls
    Case("toilet.crowding", "blue", T1, "occupied_stalls", 9.0, 8.0, 8.0, 2.0,
         for_min=10, dwell_min=10, value=0.9),
    Case("toilet.crowding", "yellow", T1, "occupied_stalls", 10.0, 9.0, 9.0, 2.0,
         for_min=5, dwell_min=10, value=1.0),
    Case("toilet.paper", "blue", T1, "paper_pct", 14.0, 15.0, 20.0, 80.0, count=3),
    Case("toilet.paper", "yellow", T1, "paper_pct", 2.0, 3.0, 20.0, 80.0, count=3),
    Case("toilet.soap", "blue", T1, "soap_pct", 14.0, 15.0, 20.0, 80.0, count=3),
    Case("toilet.soap", "yellow", T1, "soap_pct", 2.0, 3.0, 20.0, 80.0, count=3),
    # fault_code bits 1, 2, 4: hot with an unrelated bit (8) set too; inside: the other two bits
    Case("toilet.blocked_pan", "orange", T1, "fault_code", 9.0, 6.0, None, 0.0,
         count=2, value=1.0),
    Case("toilet.leak", "orange", T1, "fault_code", 10.0, 5.0, None, 0.0, count=2, value=1.0),
    Case("toilet.fan", "yellow", T1, "fault_code", 12.0, 3.0, None, 0.0, count=2, value=1.0),
    Case("toilet.power", "yellow", T1, "battery_v", 21.9, 22.0, 22.5, 24.0, count=5),
    # garbage: GB/T 19095-2019's four bins, fire, the 12 V battery
    Case("garbage.full.kitchen", "yellow", GARBAGE, "fill_kitchen_pct", 85.0, 84.9, 70.0, 10.0,
         count=2, dwell_min=30),
    Case("garbage.full.kitchen", "orange", GARBAGE, "fill_kitchen_pct", 100.0, 99.9, 70.0, 10.0,
         count=2, dwell_min=30),
    Case("garbage.full.recyclable", "yellow", GARBAGE, "fill_recyclable_pct", 90.0, 89.9, 70.0,
         10.0, count=2, dwell_min=30),
    Case("garbage.full.recyclable", "orange", GARBAGE, "fill_recyclable_pct", 100.0, 99.9, 70.0,
         10.0, count=2, dwell_min=30),
    Case("garbage.full.hazardous", "yellow", GARBAGE, "fill_hazardous_pct", 85.0, 84.9, 70.0,
         10.0, count=2, dwell_min=30),
    Case("garbage.full.hazardous", "orange", GARBAGE, "fill_hazardous_pct", 100.0, 99.9, 70.0,
         10.0, count=2, dwell_min=30),
    Case("garbage.full.other", "yellow", GARBAGE, "fill_other_pct", 90.0, 89.9, 70.0, 10.0,
         count=2, dwell_min=30),
    Case("garbage.full.other", "orange", GARBAGE, "fill_other_pct", 100.0, 99.9, 70.0, 10.0,
         count=2, dwell_min=30),
    Case("garbage.fire", "orange", GARBAGE, "temperature_c", 61.0, 60.0, 50.0, 25.0,
         count=2, dwell_min=30),
    Case("garbage.fire", "red", GARBAGE, "temperature_c", 101.0, 100.0, 80.0, 25.0, dwell_min=30),
    Case("garbage.power", "yellow", GARBAGE, "battery_v", 11.4, 11.5, 11.8, 12.6, count=5),
    # rain: CMA grades, the gauge's 3.6 V lithium cell
    Case("rain.intensity", "blue", GAUGE, "rain_mmh", 20.0, 19.9, 15.0, 0.0,
         count=2, dwell_min=30),
    Case("rain.intensity", "yellow", GAUGE, "rain_mmh", 35.0, 34.9, 25.0, 0.0,
         count=2, dwell_min=30),
    Case("rain.intensity", "orange", GAUGE, "rain_mmh", 50.0, 49.9, 40.0, 0.0,
         count=2, dwell_min=30),
    Case("rain.daily", "blue", GAUGE, "rain_day_mm", 50.0, 49.8, 45.0, 0.0),
    Case("rain.daily", "yellow", GAUGE, "rain_day_mm", 100.0, 99.8, 90.0, 0.0),
    Case("rain.daily", "orange", GAUGE, "rain_day_mm", 250.0, 249.8, 220.0, 0.0),
    Case("rain.low_battery", "blue", GAUGE, "battery_v", 3.29, 3.3, 3.32, 3.6, count=5),
    Case("rain.low_battery", "yellow", GAUGE, "battery_v", 3.09, 3.1, 3.12, 3.6, count=5),
)  # fmt: skip


def _fed(
    rule: str, device: Device, series: Iterable[tuple[float, dict[str, float]]]
) -> list[AlertTransition]:
    """``series`` fed to an engine of the default rules for ``device`` alone; ``rule``'s
    transitions."""
    return [t for t in feed(Engine(DEFAULTS, [device]), device, series) if t.rule == rule]


def _run(case: Case, values: Sequence[float]) -> list[AlertTransition]:
    """Feed ``values`` of the case's field, one a minute from minute 0; the rule's transitions."""
    return _fed(case.rule, case.device, [(m, {case.field: v}) for m, v in enumerate(values)])


def _minute(t: AlertTransition) -> float:
    return (t.ts - T0_MS) / MIN_MS


def _reaching(out: list[AlertTransition], tier: str) -> list[AlertTransition]:
    return [t for t in out if RANK[t.tier_to] >= RANK[tier] > RANK[t.tier_from]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_raises_at_its_tier_after_its_duration_or_count(case: Case) -> None:
    out = _run(case, [case.hot] * (case.raise_minute + 5))
    assert tiers(out[:1]) == [("none", case.tier)]
    assert _minute(out[0]) == case.raise_minute
    assert out[0].value == pytest.approx(case.hot if case.value is None else case.value)
    assert out[0].device_id == case.device.device_id


SHORT = [c for c in CASES if c.raise_minute > 0]


@pytest.mark.parametrize("case", SHORT, ids=lambda c: c.id)
def test_one_reading_short_does_not_raise(case: Case) -> None:
    out = _run(case, [case.hot] * case.raise_minute + [case.normal] * 60)
    assert _reaching(out, case.tier) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_just_inside_the_limit_never_raises(case: Case) -> None:
    out = _run(case, [case.inside] * 180)
    assert _reaching(out, case.tier) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_clears_once_its_dwell_is_over(case: Case) -> None:
    r = case.raise_minute
    out = _run(case, [case.hot] * (r + 1) + [case.normal] * (case.dwell_min + 5))
    assert tiers(out) == [("none", case.tier), (case.tier, "none")]
    assert _minute(out[1]) == r + max(case.dwell_min, 1)


BANDED = [c for c in CASES if c.band is not None]


@pytest.mark.parametrize("case", BANDED, ids=lambda c: c.id)
def test_holds_in_its_hysteresis_band(case: Case) -> None:
    assert case.band is not None
    r, hold = case.raise_minute, case.dwell_min + 60
    out = _run(case, [case.hot] * (r + 1) + [case.band] * hold + [case.normal])
    assert tiers(out) == [("none", case.tier), (case.tier, "none")]
    assert _minute(out[1]) == r + hold + 1


# -- device health: silent, offline, stuck, out of range ------------------------------------------


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_silent_after_five_expected_intervals_and_heard_again(kind: str) -> None:
    dev = BY_KIND[kind]
    engine = Engine(DEFAULTS, [dev])
    engine.tick(T0_MS / 1000)
    field = next(iter(kind_spec(kind).metrics))
    engine.on_telemetry(*message(dev, 0, {field: 1.0}))
    assert engine.tick((T0_MS + 5 * MIN_MS) / 1000) == []  # five intervals exactly: not yet
    out = engine.tick((T0_MS + 5 * MIN_MS + 1000) / 1000)
    assert [(t.rule, t.tier_to, t.reason) for t in out] == [
        ("device.silent", "yellow", "silent for 5 min")
    ]
    back = engine.on_telemetry(*message(dev, 7, {field: 1.0}))
    assert [(t.rule, t.tier_from, t.tier_to) for t in back] == [("device.silent", "yellow", "none")]


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_a_device_never_heard_from_is_silent_too(kind: str) -> None:
    engine = Engine(DEFAULTS, [BY_KIND[kind]])
    engine.tick(T0_MS / 1000)
    out = engine.tick((T0_MS + 6 * MIN_MS) / 1000)
    assert [(t.rule, t.tier_to, t.reason) for t in out] == [
        ("device.silent", "yellow", "never heard from for 6 min")
    ]


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_offline_on_the_last_will_and_back_on_the_birth(kind: str) -> None:
    dev = BY_KIND[kind]
    engine = Engine(DEFAULTS, [dev])
    down = engine.on_status(*status(dev, 0, "offline"))
    assert [(t.rule, t.tier_from, t.tier_to) for t in down] == [
        ("device.offline", "none", "yellow")
    ]
    up = engine.on_status(*status(dev, 3, "online"))
    assert [(t.rule, t.tier_from, t.tier_to) for t in up] == [("device.offline", "yellow", "none")]


STUCK = {
    "device.stuck.drain": (DRAIN, 30, {"level_m": 0.42, "flow_m3s": 0.12, "cod_mgl": 250.0,
                                      "nh3n_mgl": 22.0}),
    "device.stuck.toilet": (TOILET[1], 60, {"nh3_mgm3": 0.12, "h2s_mgm3": 0.004,
                                           "temperature_c": 26.5, "humidity_pct": 71.0}),
    "device.stuck.garbage": (GARBAGE, 60, {"weight_kg": 120.0, "temperature_c": 28.5}),
}  # fmt: skip
"""Rule: (device, readings in a row, {watched metric: a value to freeze at})."""
STUCK_CASES = [(rule, m) for rule, (_, _, metrics) in STUCK.items() for m in metrics]


@pytest.mark.parametrize(("rule", "metric"), STUCK_CASES, ids=[f"{r}:{m}" for r, m in STUCK_CASES])
def test_stuck_after_its_readings_in_a_row_and_moving_clears(rule: str, metric: str) -> None:
    dev, n, values = STUCK[rule]
    v = values[metric]

    def run(series: list[float]) -> list[AlertTransition]:
        return _fed(rule, dev, [(m, {metric: x}) for m, x in enumerate(series)])

    out = run([v] * n + [v * 1.01])
    assert tiers(out) == [("none", "yellow"), ("yellow", "none")]
    assert [_minute(t) for t in out] == [n - 1, n]
    assert out[0].reason == f"{metric} stuck at {v:.6g}"
    assert run([v] * (n - 1) + [v * 1.01] + [v] * (n - 1)) == []  # one short, twice


RANGES = {
    "device.range.drain": ("drain", ("level_m", "fill_ratio", "flow_m3s", "velocity_ms",
                                     "cod_mgl", "nh3n_mgl", "battery_v", "rssi_dbm")),
    "device.range.toilet": ("toilet", ("nh3_mgm3", "h2s_mgm3", "paper_pct", "soap_pct",
                                       "temperature_c", "humidity_pct", "battery_v")),
    "device.range.garbage": ("garbage", ("fill_kitchen_pct", "fill_recyclable_pct",
                                         "fill_hazardous_pct", "fill_other_pct", "weight_kg",
                                         "temperature_c", "battery_v")),
    "device.range.rain": ("rain", ("rain_mmh", "rain_day_mm", "battery_v")),
}  # fmt: skip
RANGE_CASES = [(rule, m, side) for rule, (_, ms) in RANGES.items() for m in ms
               for side in ("low", "high")]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "metric", "side"), RANGE_CASES, ids=[f"{r}:{m}:{s}" for r, m, s in RANGE_CASES]
)
def test_out_of_its_physical_range_at_once_and_back_in_clears(
    rule: str, metric: str, side: str
) -> None:
    kind = RANGES[rule][0]
    dev, spec = BY_KIND[kind], kind_spec(kind).metrics[metric]
    limit, outside = (spec.low, spec.low - 1.0) if side == "low" else (spec.high, spec.high + 1.0)
    series = [limit, outside, (spec.low + spec.high) / 2]  # the limit itself is in range
    out = _fed(rule, dev, [(m, {metric: v}) for m, v in enumerate(series)])
    assert tiers(out) == [("none", "yellow"), ("yellow", "none")]
    assert [_minute(t) for t in out] == [1, 2]
    assert out[0].value == outside


# -- rain gauges: stuck (says it rains, the day total stands still) and blocked (0 in a storm) ----


Series = list[tuple[float, dict[str, float]]]


def _rain(minutes: range, mmh: float, day_mm: float, per_min: float = 0.0) -> Series:
    """A gauge's readings: ``mmh`` each minute, the day total from ``day_mm`` up ``per_min``."""
    return [(m, {"rain_mmh": mmh, "rain_day_mm": day_mm + per_min * (m - minutes[0])})
            for m in minutes]  # fmt: skip


def test_a_frozen_gauge_saying_it_rains_is_stuck() -> None:
    # 40 min of 12 mm/h (the day total 0.2 mm a minute), then the logger repeats that report
    wet = _rain(range(40), 12.0, 3.0, per_min=0.2)
    frozen = _rain(range(40, 160), 12.0, 3.0 + 0.2 * 39)
    out = _fed("device.stuck.rain", GAUGE, wet + frozen)
    assert tiers(out) == [("none", "yellow")]
    # minute 39's total repeats from minute 40: the 30-min fit is flat once 23 of its 31 points
    # are (minute 61), and the rule needs 30 min of it
    assert _minute(out[0]) == 91
    assert out[0].reason == "rain_mmh says it rains, rain_day_mm does not grow - stuck"
    moving = _fed("device.stuck.rain", GAUGE, wet + frozen[:60] + _rain(range(100, 110), 0.0, 12))
    assert tiers(moving) == [("none", "yellow"), ("yellow", "none")]
    assert _minute(moving[1]) == 100  # dry again: not saying it rains


def test_a_stuck_rain_mmh_after_the_rain_stops_is_stuck() -> None:
    rain = _rain(range(60), 8.0, 0.0, per_min=8.0 / 60)
    after = _rain(range(60, 180), 8.0, 8.0 * 59 / 60)  # rain_mmh frozen, the day total stands
    out = _fed("device.stuck.rain", GAUGE, rain + after)
    assert tiers(out) == [("none", "yellow")]
    assert 60 < _minute(out[0]) <= 120


@pytest.mark.parametrize(
    "series",
    [
        _rain(range(1440), 0.0, 12.4),  # a dry day after a morning shower: zeros, a flat total
        _rain(range(180), 0.9, 0.0, per_min=0.0),  # under the metric's resolution
        _rain(range(180), 12.0, 0.0, per_min=0.2),  # steady rain, the total growing with it
        _rain(range(180), 1.0, 0.0, per_min=1.0 / 60),  # the least rain, the least growth
        _rain(range(1380, 1440), 6.0, 150.0, per_min=0.1)
        + _rain(range(1440, 1560), 6.0, 0.0, per_min=0.1),  # rain across midnight: reset to 0
    ],
    ids=["dry-day", "under-resolution", "steady-rain", "least-rain", "across-midnight"],
)
def test_a_working_gauge_is_never_stuck(series: list[tuple[float, dict[str, float]]]) -> None:
    out = feed(Engine(DEFAULTS, [GAUGE]), GAUGE, series)
    assert [t for t in out if t.rule.startswith("device.")] == []


def test_one_reading_short_of_the_stuck_duration_does_not_raise() -> None:
    wet = _rain(range(40), 12.0, 3.0, per_min=0.2)
    frozen = _rain(range(40, 91), 12.0, 3.0 + 0.2 * 39)  # up to minute 90
    assert _fed("device.stuck.rain", GAUGE, wet + frozen + _rain(range(91, 95), 0.0, 11)) == []


NEIGHBOURS = tuple(_gauge(k, LON + 0.01 * k) for k in (2, 3, 4))
"""Three gauges 1-3 km east of ``GAUGE``: with it, its 4 nearest."""


def _storm(
    here: list[float], there: list[float], second: list[float] | None = None
) -> list[AlertTransition]:
    """``GAUGE`` reads ``here``, its neighbours ``there`` (the nearest of them ``second``, if
    given), a minute apart; device.blocked.rain's transitions at ``GAUGE``."""
    engine = Engine(DEFAULTS, [GAUGE, *NEIGHBOURS])
    out: list[AlertTransition] = []
    for m, v in enumerate(here):
        for k, n in enumerate(NEIGHBOURS):
            mmh = second[m] if second is not None and k == 0 else there[m]
            engine.on_telemetry(*message(n, m, {"rain_mmh": mmh}))
        out += engine.on_telemetry(*message(GAUGE, m, {"rain_mmh": v}))
    return [t for t in out if t.rule == "device.blocked.rain" and t.device_id == GAUGE.device_id]


def _varying(mean: float, n: int) -> list[float]:
    """Rain around ``mean`` that never repeats a value for long (real rain)."""
    return [mean + (m % 5 - 2) * 0.5 for m in range(n)]


def test_a_gauge_reading_zero_for_an_hour_in_a_rainstorm_is_blocked() -> None:
    out = _storm([0.0] * 70, _varying(20.0, 70))  # the 4 nearest: (0 + 3 x 20) / 4 = 15 > 10
    assert tiers(out) == [("none", "yellow")]
    assert _minute(out[0]) == 60
    assert out[0].category == "device"


def test_two_blocked_neighbours_still_see_a_rainstorm() -> None:
    out = _storm([0.0] * 70, _varying(21.0, 70), second=[0.0] * 70)  # (0 + 0 + 2 x 21) / 4
    assert tiers(out) == [("none", "yellow")]


@pytest.mark.parametrize(
    ("here", "there"),
    [
        ([0.0] * 120, _varying(13.0, 120)),  # the others at 13 mm/h: (0 + 3 x 13) / 4 < 10
        ([0.0] * 60 + [0.4], _varying(20.0, 61)),  # a tip in the 61st minute: one reading short
        ([0.0] * 1440, [0.0] * 1440),  # a dry day everywhere
        (_varying(18.0, 120), _varying(20.0, 120)),  # raining here too
    ],
    ids=["light-rain-around", "one-short", "dry-day", "raining-here"],
)
def test_a_gauge_that_measures_or_has_nothing_to_measure_is_not_blocked(
    here: list[float], there: list[float]
) -> None:
    assert _storm(here, there) == []


def test_blocked_clears_on_its_own_first_tip_not_when_the_storm_moves_on() -> None:
    here = [0.0] * 120 + [0.4]
    there = _varying(20.0, 61) + [0.0] * 60  # the storm moves on at minute 61
    out = _storm(here, there)
    assert tiers(out) == [("none", "yellow"), ("yellow", "none")]
    assert [_minute(t) for t in out] == [60, 120]


# -- drain.overflow without a network file: yellow, orange's "now" way, red on the level ---------
# The registry alone gives nodes without links or pipes, and no forecast: the parts marked
# ``unknown: holds`` are left out, so the measured state decides (the forecast's ways:
# test_forecast.py; head, capacity and the node below: test_head.py, test_capacity.py; the
# scores on the typhoon: test_typhoon_score.py). DRAIN: 0.5 m pipe, 2 m from invert to cover.

STORM_GAUGE = _gauge(9)


def _overflow(levels: Sequence[float | None], mmh: float = 0.0) -> list[AlertTransition]:
    """``DRAIN`` at ``levels`` (m; ``None``: the level read fails), ``STORM_GAUGE`` at ``mmh``,
    a minute apart; drain.overflow's transitions."""
    engine = Engine(DEFAULTS, [DRAIN, STORM_GAUGE])
    out: list[AlertTransition] = []
    for m, level in enumerate(levels):
        engine.on_telemetry(*message(STORM_GAUGE, m, {"rain_mmh": mmh + (m % 3) * 0.1}))
        fill = 4.0 if level is None else level / 0.5
        values = {"fill_ratio": fill} if level is None else {"level_m": level, "fill_ratio": fill}
        out += engine.on_telemetry(*message(DRAIN, m, values))
    return [t for t in out if t.rule == "drain.overflow"]


def _rising(start_m: float, per_min: float, n: int) -> list[float | None]:
    return [round(start_m + per_min * m, 4) for m in range(n)]


def test_overflow_yellow_a_filling_pipe_in_a_rainstorm() -> None:
    # fill 0.6 rising 0.6 an hour: at_least 0.7 at minute 10, with > 35 mm/h at the gauge
    rising = _rising(0.3, 0.005, 11)
    out = _overflow(rising + [0.25] * 31, mmh=40.0)
    assert tiers(out) == [("none", "yellow"), ("yellow", "none")]
    assert [_minute(t) for t in out] == [10, 40]  # clears below 0.6 once its 30 min dwell ends
    assert out[0].reason == "overflow possible - pipe filling in a rainstorm"
    assert _overflow(_rising(0.3, 0.005, 30), mmh=34.8) == []  # a mean of 34.9 mm/h: not > 35
    assert _overflow(_rising(0.3, 0.002, 60), mmh=40.0) == []  # rising 0.24 an hour: not > 0.3


def test_overflow_orange_now_surcharged_and_the_water_at_the_cover_within_45_min() -> None:
    # 0.04 m a minute from 0.6 m: at minute 4, 1.24 m below the cover, there in 31 min
    out = _overflow(_rising(0.6, 0.04, 5) + [0.25] * 31)
    assert tiers(out) == [("none", "orange"), ("orange", "none")]
    assert [_minute(t) for t in out] == [4, 34]  # clears below 0.8 full after its 30 min dwell
    assert out[0].prediction is not None
    assert out[0].prediction.metric == "depth_below_ground_m"
    assert out[0].prediction.time_to_s == pytest.approx(31 * 60, abs=1)
    assert _overflow(_rising(0.6, 0.01, 20)) == []  # 0.01 m a minute: 2 h away
    assert _overflow(_rising(0.2, 0.04, 8)) == []  # as fast, but not surcharged (fill <= 0.96)


def test_overflow_red_the_water_at_the_cover_and_a_drowned_sensor() -> None:
    out = _overflow([1.96] + [0.25] * 31)  # 4 cm below the cover
    assert tiers(out) == [("none", "red"), ("red", "orange"), ("orange", "none")]
    assert [_minute(t) for t in out] == [0, 15, 30]  # red's dwell 15 min, orange's 30
    assert _overflow([1.94] * 30) == []  # 6 cm below it
    drowned = _overflow([*_rising(0.6, 0.04, 5), None])
    assert tiers(drowned) == [("none", "orange"), ("orange", "red")]
    assert drowned[1].reason == "water at the cover (its level_m read failed: sensor under water)"


# -- garbage.missed_collection: a bin still above 40% an hour after 07:00 -------------------------


def _collection(fills: dict[int, float]) -> list[AlertTransition]:
    """The other bin at ``fills`` ({minute after midnight: %}), the others empty."""
    empty = {"fill_kitchen_pct": 5.0, "fill_recyclable_pct": 5.0, "fill_hazardous_pct": 5.0}
    series = [(m, empty | {"fill_other_pct": f}) for m, f in sorted(fills.items())]
    return _fed("garbage.missed_collection", GARBAGE, series)


def _every_5_min(start: int, end: int, fill: float) -> dict[int, float]:
    return dict.fromkeys(range(start, end, 5), fill)


def test_a_bin_not_collected_at_7_is_told_at_8_and_clears_once_emptied() -> None:
    out = _collection(_every_5_min(420, 490, 55.0) | {495: 5.0})
    assert tiers(out) == [("none", "orange"), ("orange", "none")]
    assert [_minute(t) for t in out] == [480, 495]
    assert out[0].reason == "not collected: fill_other_pct"


@pytest.mark.parametrize(
    "fills",
    [
        _every_5_min(420, 480, 55.0),  # up to 07:55: within the hour's grace
        _every_5_min(420, 540, 40.0),  # at 40%, not above
        _every_5_min(420, 450, 55.0) | {450: 5.0} | _every_5_min(455, 540, 55.0),  # emptied 07:30
    ],
    ids=["in-grace", "at-40", "emptied-and-refilled"],
)
def test_a_bin_collected_or_not_due_is_not_missed(fills: dict[int, float]) -> None:
    assert _collection(fills) == []


# -- selectors: districts and ids --------------------------------------------------------------

SELECTED = """
version: 1
kind: drain
rules:
  - name: drain.north
    category: overload
    select: {districts: [linhai, sanmen]}
    metric: fill_ratio
    tiers: [{tier: yellow, raise: {above: 0.7}}]
  - name: drain.two
    category: overload
    select: {ids: [dr-lh-000002, dr-jj-000001]}
    metric: fill_ratio
    tiers: [{tier: yellow, raise: {above: 0.7}}]
  - name: drain.both
    category: overload
    select: {districts: [linhai], ids: [dr-lh-000001, dr-jj-000001]}
    metric: fill_ratio
    tiers: [{tier: yellow, raise: {above: 0.7}}]
  - name: drain.deep
    category: overload
    select: {districts: [linhai], attributes: {pipe_diameter_m: 1.0}}
    metric: fill_ratio
    tiers: [{tier: yellow, raise: {above: 0.7}}]
  - name: silent.linhai
    kind: "*"
    type: silent
    category: device
    select: {districts: [linhai]}
    after_intervals: 2
"""


def _drain_in(district: str, device_id: str, **attrs: float) -> Device:
    base: dict[str, float | str] = {"pipe_diameter_m": 0.5, "invert_elev_m": 1.0,
                                    "ground_elev_m": 3.0, **attrs}  # fmt: skip
    return Device(device_id, DeviceKind.DRAIN, district, LAT, LON, 60.0, base)


def test_districts_and_ids_select_devices_every_part_given_must_match(tmp_path: Path) -> None:
    lh1 = _drain_in("linhai", "dr-lh-000001", pipe_diameter_m=1.0)
    lh2 = _drain_in("linhai", "dr-lh-000002")
    sm1 = _drain_in("sanmen", "dr-sm-000001", pipe_diameter_m=1.0)
    jj1 = _drain_in("jiaojiang", "dr-jj-000001", pipe_diameter_m=1.0)
    wc = Device("wc-lh-000001", DeviceKind.TOILET, "linhai", LAT, LON, 60.0, {"stalls": 4.0})
    rs = rules(tmp_path, SELECTED)
    chosen = {d.device_id: {r.name for r in rs.for_device(d)} for d in (lh1, lh2, sm1, jj1, wc)}
    assert chosen == {
        "dr-lh-000001": {"drain.north", "drain.both", "drain.deep", "silent.linhai"},
        "dr-lh-000002": {"drain.north", "drain.two", "silent.linhai"},
        "dr-sm-000001": {"drain.north"},
        "dr-jj-000001": {"drain.two"},  # the id matches drain.both, its district does not
        "wc-lh-000001": {"silent.linhai"},  # kind "*" within the district
    }
    engine = Engine(rs, [lh1, lh2, sm1, jj1, wc])
    raised = set()
    for d in (lh1, lh2, sm1, jj1):
        out = engine.on_telemetry(*message(d, 0, {"fill_ratio": 0.9}))
        raised |= {(t.device_id, t.rule) for t in out}
    assert raised == {(d, r) for d, names in chosen.items() for r in names
                      if r.startswith("drain.")}  # fmt: skip
    engine.tick((T0_MS + 3 * MIN_MS) / 1000)  # nothing from the toilet: silent, in linhai only
    assert engine.active().get(("wc-lh-000001", "silent.linhai")) == "yellow"
    assert ("dr-jj-000001", "silent.linhai") not in engine.active()


# -- derived metrics no default rule reads: manhole_fill, fill_max_pct ---------------------------

DERIVED_RULES = """
version: 1
rules:
  - name: drain.manhole
    kind: drain
    category: overflow
    metric: manhole_fill
    tiers: [{tier: orange, raise: {at_least: 0.75}, clear: {below: 0.5}}]
  - name: garbage.any_full
    kind: garbage
    category: overload
    metric: fill_max_pct
    tiers: [{tier: yellow, raise: {at_least: 90}, clear: {below: 60}}]
"""


def test_manhole_fill_is_the_level_over_the_manhole_depth(tmp_path: Path) -> None:
    shallow = drain("dr-jj-000002", ground_elev_m=2.0)  # 1 m from invert to cover
    bare = Device("dr-jj-000003", DeviceKind.DRAIN, "jiaojiang", LAT, LON, 60.0, {})
    engine = Engine(rules(tmp_path, DERIVED_RULES), [DRAIN, shallow, bare])
    # DRAIN is 2 m deep: 1.4 m is 0.7 of it, 1.5 m three quarters
    assert feed(engine, DRAIN, [(0, {"level_m": 1.4})]) == []
    out = feed(engine, DRAIN, [(1, {"level_m": 1.5}), (2, {"level_m": 0.9})])
    assert [(t.tier_to, t.value) for t in out] == [("orange", 0.75), ("none", 0.45)]
    assert tiers(feed(engine, shallow, [(0, {"level_m": 0.75})])) == [("none", "orange")]
    assert feed(engine, bare, [(0, {"level_m": 5.0})]) == []  # no elevations: not for it


def test_fill_max_pct_is_the_fullest_bin_of_those_read(tmp_path: Path) -> None:
    engine = Engine(rules(tmp_path, DERIVED_RULES), [GARBAGE])
    bins = {"fill_kitchen_pct": 10.0, "fill_recyclable_pct": 89.0, "fill_hazardous_pct": 20.0,
            "fill_other_pct": 30.0}  # fmt: skip
    out = feed(engine, GARBAGE, [(0, bins), (1, bins | {"fill_hazardous_pct": 91.0}),
                                 (2, {"fill_other_pct": 55.0})])  # fmt: skip
    mine = [t for t in out if t.rule == "garbage.any_full"]
    assert [(t.tier_to, t.value) for t in mine] == [("yellow", 91.0), ("none", 55.0)]


@pytest.mark.parametrize("code", range(16))
def test_the_fault_bits_of_fault_code(code: int) -> None:
    got = {}
    for m in ("fault_blocked_pan", "fault_leak", "fault_fan"):
        fn = extractor("toilet", m, T1)
        assert fn is not None
        got[m] = fn({"fault_code": float(code)})
    assert got == {"fault_blocked_pan": float(code & 1 != 0), "fault_leak": float(code & 2 != 0),
                   "fault_fan": float(code & 4 != 0)}  # fmt: skip


# -- every default rule has its cases here ------------------------------------------------------

EXPLICIT = {
    "drain.overflow": ("yellow", "orange", "red"),
    "device.stuck.rain": ("yellow",),
    "device.blocked.rain": ("yellow",),
}
"""Threshold rules with tests of their own above (conditions beyond one comparison)."""
TYPED = {"device.silent": "silent", "device.offline": "offline",
         "garbage.missed_collection": "missed_collection"}  # fmt: skip


def test_every_default_rule_is_covered_here() -> None:
    covered = {c.rule for c in CASES} | set(EXPLICIT) | set(STUCK) | set(RANGES) | set(TYPED)
    assert {r.name for r in DEFAULTS} == covered, (
        "a default rule without cases here (or a stale one)"
    )
    table = {(c.rule, c.tier) for c in CASES}
    for r in DEFAULTS:
        rule, levels = r.rule, tuple(t.tier for t in r.rule.tiers)
        if r.name in EXPLICIT:
            assert levels == EXPLICIT[r.name], r.name
        elif r.name in STUCK:
            assert (rule.type, rule.readings, rule.tier) == ("stuck", STUCK[r.name][1], "yellow")
            assert set(rule.metrics) == set(STUCK[r.name][2]), r.name
        elif r.name in RANGES:
            assert (rule.type, rule.kind, rule.tier) == (
                "out_of_range",
                RANGES[r.name][0],
                "yellow",
            )
            assert tuple(rule.metrics) == RANGES[r.name][1], r.name
        elif r.name in TYPED:
            assert rule.type == TYPED[r.name], r.name
        else:
            assert rule.type == "threshold", r.name
            assert {(r.name, t) for t in levels} == {x for x in table if x[0] == r.name}, r.name
