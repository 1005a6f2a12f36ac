"""The default drain rules on the typhoon scenario, scored against the simulator's ground truth
beside a naive ``fill >= 0.7`` baseline in the same run (issue 10's goals; see docs/alerting.md
for where they fall short and why)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import default_rules_dir, load_rules
from firmware_sim import make_fleet
from telemetry_core import DeviceKind
from tests.unit.alerting.backtest import Run, describe, replay, score, simulate
from tests.unit.alerting.kit import rules

pytestmark = pytest.mark.slow

BASELINE = """
version: 1
kind: drain
rules:
  - name: baseline.fill
    category: overflow
    metric: fill_ratio
    tiers: [{tier: orange, raise: {at_least: 0.7}, clear: {below: 0.7}}]
"""
DISTRICTS = ("linhai", "sanmen", "xianju", "luqiao")
"""The districts whose networks overflow in this scenario (the others only surcharge)."""


SEEDS = (1, 2, 3)
"""Seed 1 tuned the rules; seed 2 (another realisation of the storm: other rain cells, another
tide, three times the overflows) checks them; seed 3 was held out: first run after the rules
of stop 14 were final, and never used to tune them."""


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def typhoon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, Run]:
    devices = []
    for n, district in enumerate(DISTRICTS):
        devices += make_fleet(district, DeviceKind.DRAIN, 40, seed=1 + n)
        devices += make_fleet(district, DeviceKind.RAIN, 3, seed=11 + n)
    out = tmp_path_factory.mktemp(f"typhoon-seed{request.param}")
    return request.param, simulate(devices, "typhoon_rainstorm", out, 18, seed=request.param)


def test_drain_overflow_warnings_against_the_baseline(
    typhoon: tuple[int, Run], tmp_path: Path
) -> None:
    seed, run = typhoon
    transitions = replay(run, load_rules(default_rules_dir()))
    ours = score(transitions, run, {"drain.overflow"}, "overflow")
    base = score(replay(run, rules(tmp_path, BASELINE)), run, {"baseline.fill"}, "overflow")
    print()
    print(describe(f"seed {seed} drain.overflow (orange+)", ours))
    print(describe(f"seed {seed} baseline fill >= 0.7", base))
    assert ours.events >= 5, "the scenario must produce overflows to score"
    # Tolerances (measured, docs/alerting.md "How good the warnings are"): seed 1 precision
    # 0.64, recall 1.00, median lead 56 min; seed 2 0.79 / 0.86 / 4 min; seed 3 (held out)
    # 0.56 / 0.90 / 56.5 min; the baseline 0.07 / 0.93 / 32 min, 0.26 / 0.95 / 11 min and
    # 0.20 / 1.00 / 14 min. The goals are recall >= 0.95, lead >= 20 min and >= 1.5x
    # the baseline's, precision >= 0.7. Seeds 1 and 3 meet both lead goals, seed 1 recall too.
    # Seed 2's overflows are mostly in Luqiao, which the storm reaches first: no gauge of this
    # fleet is up-wind of it, the forecast is blind there and the measured state warns 1-6 min
    # ahead; its 17 overflows elsewhere are forecast 50-60 min ahead. Asserted is what holds,
    # with a margin of about one event: recall, precision and the share of the baseline's
    # warnings per seed below, precision at least 2.5x the baseline's; on seeds 1 and 3 a
    # median lead of at least 1.5x the baseline's and 45 min, on seed 2 the overflows outside
    # Luqiao mostly warned 40 min or more ahead.
    assert ours.recall >= {1: 0.95, 2: 0.83, 3: 0.85}[seed]
    assert ours.events_detected >= 0.83 * ours.events
    # Red ("water at the cover") reaches the manholes that overflow although their level
    # sensors drown there (the read fails, `fault_from: orange`): 14/14, 37/43 and 29/31
    # measured;
    # without `fault_from`, 8/14 and 12/43 were.
    red = {t.device_id for t in transitions if t.rule == "drain.overflow" and t.tier_to == "red"}
    flooded = {d for e in run.events if e.label == "overflow" for d in e.device_ids}
    print(f"seed {seed} red at {len(red & flooded)} of {len(flooded)} overflowing manholes")
    assert len(red & flooded) >= 0.85 * len(flooded)
    assert ours.precision >= 2.5 * base.precision
    assert ours.precision >= {1: 0.58, 2: 0.72, 3: 0.52}[seed]
    assert ours.warnings <= base.warnings / {1: 3, 2: 3, 3: 2.5}[seed]
    assert ours.median_lead_s is not None
    assert base.median_lead_s is not None
    if seed in (1, 3):
        assert ours.median_lead_s >= 1.5 * base.median_lead_s
        assert ours.median_lead_s >= 45 * 60.0
    else:
        assert ours.median_lead_s >= 120.0
        away = [e for e in run.events if e.label == "overflow" and e.district != "luqiao"]
        early = _warned_ahead(transitions, away, 40 * 60.0)
        print(f"seed {seed} outside Luqiao {early} of {len(away)} overflows warned 40 min ahead")
        assert early > len(away) / 2


def _warned_ahead(transitions: list, events: list, lead_s: float) -> int:  # type: ignore[type-arg]
    """How many ``events`` an orange-or-red drain.overflow warned at least ``lead_s`` ahead
    (and at most the scoring horizon, 1 h)."""
    first: dict[str, list[float]] = {}
    for t in transitions:
        if t.rule == "drain.overflow" and t.tier_to in ("orange", "red"):
            first.setdefault(t.device_id, []).append(t.ts / 1000.0)
    count = 0
    for e in events:
        times = [x for d in e.device_ids for x in first.get(d, ())]
        count += any(e.onset_s - 3600.0 <= x <= e.onset_s - lead_s for x in times)
    return count


OTHERS = ("jiaojiang", "huangyan", "wenling", "yuhuan", "tiantai")
"""Districts whose networks only surcharge in this scenario: every warning there is false."""


def test_no_overflow_districts_get_a_fraction_of_the_baselines_false_warnings(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    devices = []
    for n, district in enumerate(OTHERS):
        devices += make_fleet(district, DeviceKind.DRAIN, 40, seed=1 + n)
        devices += make_fleet(district, DeviceKind.RAIN, 3, seed=11 + n)
    run = simulate(devices, "typhoon_rainstorm", tmp_path_factory.mktemp("typhoon-others"), 18)
    ours = score(replay(run, load_rules(default_rules_dir())), run, {"drain.overflow"}, "overflow")
    base = score(replay(run, rules(tmp_path, BASELINE)), run, {"baseline.fill"}, "overflow")
    print()
    print(describe("5 others drain.overflow", ours))
    print(describe("5 others baseline fill >= 0.7", base))
    assert ours.events == 0, "these districts must not overflow for this check to mean anything"
    assert base.warnings >= 50
    assert ours.warnings <= 0.05 * base.warnings  # none of the baseline's 153 when measured
