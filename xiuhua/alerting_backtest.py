"""Backtests with scores: the alerting engine's replay, scored with the simulator's helper.

``alerting`` must not import ``firmware_sim`` (components never import each other), so the
scoring is wired here: each rule's transitions become :class:`firmware_sim.ScoredAlert` for
the ground-truth label the rule warns of, scored by :func:`firmware_sim.score_alerts`, beside
the naive baseline (a plain fill >= 0.7 rule on every drain) replayed in the same pass.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alerting import (
    Engine,
    ForecastCounts,
    Item,
    Network,
    Replay,
    RuleSet,
    RuleSummary,
    load_rules,
    replay,
    summarize,
)
from firmware_sim import LabelScore, ScoredAlert, TruthEvent, score_alerts
from telemetry_core.registry import Registry
from telemetry_core.schema import AlertTransition

BASELINE_RULE: Final = "baseline.fill70"
BASELINE_YAML: Final = """\
version: 1
kind: drain
rules:
  - name: baseline.fill70
    category: overflow
    description: The naive baseline of issue 10 - a pipe at or above 70% full, at once.
    metric: fill_ratio
    tiers:
      - tier: orange
        raise: {at_least: 0.7}
        clear: {below: 0.7}
        count: 1
"""

DEFAULT_LABELS: Final = (
    ("drain.overflow", "overflow"),
    ("drain.overload", "surcharge"),
    ("garbage.full.", "bin_full"),
    ("garbage.fire", "fire"),
    ("garbage.missed_collection", "missed_collection"),
    ("toilet.nh3.", "odour_nh3"),
    ("toilet.h2s", "odour_h2s"),
    ("device.silent", "device_outage"),
    ("device.offline", "device_outage"),
    ("device.stuck.", "fault:stuck"),
    ("device.blocked.", "fault:stuck"),
    ("device.range.", "fault:spike"),
    ("drain.low_battery", "fault:battery"),
    ("rain.low_battery", "fault:battery"),
    ("garbage.power", "fault:battery"),
    ("toilet.power", "fault:battery"),
    (BASELINE_RULE, "overflow"),
)
"""Which ground-truth label a rule warns of, by rule name (prefixes end with a dot)."""


def label_of(rule: str, overrides: Mapping[str, str]) -> str | None:
    """The label ``rule`` is scored against: an override, else :data:`DEFAULT_LABELS`."""
    if rule in overrides:
        return overrides[rule]
    for name, label in DEFAULT_LABELS:
        if rule == name or (name.endswith(".") and rule.startswith(name)):
            return label
    return None


def baseline_rules() -> RuleSet:
    """The baseline rule set (fill >= 0.7, orange, at once)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.yaml"
        path.write_text(BASELINE_YAML, encoding="utf-8")
        return load_rules(path)


@dataclass(frozen=True, slots=True)
class ScoredRule:
    """A rule's summary and, where ground truth has its label, its score."""

    summary: RuleSummary
    label: str | None
    score: LabelScore | None


@dataclass(frozen=True, slots=True)
class Backtest:
    """The rules' results, the baseline's, and the replay's size."""

    rules: tuple[ScoredRule, ...]
    baseline: tuple[ScoredRule, ...]
    replay: Replay
    forecast: ForecastCounts | None = None
    """What the rules' forecast did in the replay (its seconds waited: the replay's wait)."""


def run_backtest(
    rules: RuleSet,
    registry: Registry,
    network: Network | None,
    items: Iterable[Item],
    *,
    truth: Sequence[TruthEvent] | None = None,
    horizon_s: float = 3600.0,
    min_tier: str = "orange",
    with_baseline: bool = True,
    labels: Mapping[str, str] | None = None,
) -> Backtest:
    """Replay ``items`` through the rules (and the baseline, in the same pass) and score them."""
    base = baseline_rules() if with_baseline else None
    engines = [Engine(rules, registry, network)]
    if base is not None:
        engines.append(Engine(base, registry, network))
    try:
        result = replay(engines, items)
        forecast = engines[0].forecast_counts()
    finally:
        for engine in engines:
            engine.close()
    units = dict(network.devices) if network is not None else None
    score = _Scorer(truth, horizon_s, min_tier, units, labels or {})
    scored = tuple(score(s, result.transitions[0]) for s in summarize(result.transitions[0], rules))
    baseline: tuple[ScoredRule, ...] = ()
    if base is not None:
        baseline = tuple(
            score(s, result.transitions[1]) for s in summarize(result.transitions[1], base)
        )
    return Backtest(scored, baseline, result, forecast)


class _Scorer:
    def __init__(
        self,
        truth: Sequence[TruthEvent] | None,
        horizon_s: float,
        min_tier: str,
        units: Mapping[str, str] | None,
        labels: Mapping[str, str],
    ) -> None:
        self._truth, self._horizon_s, self._min_tier = truth, horizon_s, min_tier
        self._units, self._labels = units, labels

    def __call__(self, summary: RuleSummary, transitions: Sequence[AlertTransition]) -> ScoredRule:
        label = label_of(summary.rule, self._labels)
        if label is None or self._truth is None:
            return ScoredRule(summary, label, None)
        alerts = [
            ScoredAlert(t.device_id, t.ts / 1000.0, t.tier_to, label)
            for t in transitions
            if t.rule == summary.rule and t.tier_to not in ("none", t.tier_from)
        ]
        result = score_alerts(alerts, self._truth, label=label, horizon_s=self._horizon_s,
                              min_tier=self._min_tier, device_units=self._units)  # fmt: skip
        return ScoredRule(summary, label, result if result.events or result.warnings else None)


def format_report(result: Backtest) -> list[str]:
    """The report as lines: one per rule, then the baseline, then the replay's size."""
    head = f"{'rule':32} {'alerts':>6} {'flaps':>5} {'top':>6}  {'precision':>9} {'recall':>6}"
    lines = [head + f" {'median lead':>11} {'events':>6}  label"]
    lines += [_row(r) for r in result.rules]
    if result.baseline:
        lines.append("baseline (same replay):")
        lines += [_row(r) for r in result.baseline]
    rep = result.replay
    lines.append(f"replayed {rep.messages} messages in {rep.wall_s:.1f} s")
    if result.forecast is not None:
        lines.append(forecast_line(result.forecast))
    return lines


def forecast_line(counts: ForecastCounts) -> str:
    """What the rules' hydraulic forecast cost the replay."""
    runs = counts.runs
    each = f", {counts.seconds / runs * 1000:.0f} ms each" if runs else ""
    return (f"forecast: {runs} issues ({counts.failures} failed){each}; the replay waited "
            f"{counts.waited_s:.1f} s "
            "for them (a replay outruns event time; live, evaluation does not wait)")  # fmt: skip


def _row(rule: ScoredRule) -> str:
    s, sc = rule.summary, rule.score
    text = f"{s.rule:32} {s.alerts:>6} {s.flaps:>5} {s.highest:>6}"
    if sc is None:
        return f"{text}  {'-':>9} {'-':>6} {'-':>11} {'-':>6}  {rule.label or ''}"
    lead = "-" if sc.median_lead_s is None else f"{sc.median_lead_s / 60:.1f} min"
    return (f"{text}  {sc.precision:>9.3f} {sc.recall:>6.3f} {lead:>11} {sc.events:>6}"
            f"  {sc.label}")  # fmt: skip
