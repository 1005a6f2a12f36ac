"""Evaluators: one per (device, rule), compiled once, fed each reading in event time.

An evaluator updates its ``RuleState`` and says whether its *target* tier changed; the engine
then applies hygiene (flapping, silences, incidents) and emits the transition.

Tier semantics (``docs/alerting.md``): each tier latches when its raise condition has held for
``for`` (event time) or ``count`` readings in a row, and then latches every lower tier too;
a latched tier unlatches when its clear condition (or, without one, the raise condition's
negation) has held for ``clear_for`` and the tier has stood for ``dwell``. The target tier is the
highest latched one, so clearing a higher tier can leave a lower one standing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from alerting._conditions import CondFn, Runtime, compile_condition
from alerting._derived import DERIVED, Extractor, extractor, raw_metrics
from alerting._rules import TIER_ORDER, LoadedRule
from alerting._state import UNSET, RuleState

IGNORED_FLAGS: Final = frozenset({"sensor_fault", "spike_filtered", "out_of_range", "stuck"})
"""A reading flagged so is not evaluated by value rules: state is held, neither raised nor reset."""
SUSPECT: Final = "suspect"
"""A suspect reading may hold or clear a tier but never counts towards raising one."""
LOCAL_OFFSET_S: Final = 8 * 3600
"""Asia/Shanghai (no daylight saving): collection windows are in local hours."""


def level_of(tier: str) -> int:
    """1 for blue up to 4 for red."""
    return TIER_ORDER.index(tier) + 1


@dataclass(frozen=True, slots=True)
class CompiledTier:
    """One tier, ready to run."""

    level: int
    raise_fn: CondFn
    clear_fn: CondFn | None
    for_ms: int
    count: int
    clear_for_ms: int
    dwell_ms: int
    reason: str


class Evaluator:
    """Base: the rule, its state, and what the last update saw."""

    __slots__ = ("key", "reason", "rule", "state")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        self.rule = rule
        self.state = state
        self.key = f"{device_id}\x1f{rule.name}"
        self.reason = ""

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        """Feed one reading; True if the target tier changed."""
        raise NotImplementedError

    def _set_target(self, target: int, reason: str) -> bool:
        if target == self.state.target:
            return False
        self.state.target = target
        self.reason = reason
        return True


class ThresholdEvaluator(Evaluator):
    """Tiers with raise and clear conditions over a raw or derived metric."""

    __slots__ = ("extract", "sources", "tiers")

    def __init__(
        self, rule: LoadedRule, state: RuleState, rt: Runtime, extract: Extractor,
        tiers: list[CompiledTier],
    ) -> None:  # fmt: skip
        super().__init__(rule, state, rt.device.device_id)
        self.extract = extract
        self.tiers = tiers
        metric = rule.rule.metric or ""
        derived = DERIVED.get(rule.kind, {}).get(metric)
        self.sources = derived.needs if derived else (metric,)

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        v = self.extract(readings)
        if v is None:
            return False
        suspect = False
        if quality:
            flags = {quality.get(s) for s in self.sources}
            if flags & IGNORED_FLAGS:
                return False
            suspect = SUSPECT in flags
        st = self.state
        st.value = v
        t = ts / 1000.0
        rt.prediction = None
        for i, tier in enumerate(self.tiers):
            if st.latched[i]:
                self._maybe_clear(i, tier=tier, v=v, r=readings, t=t, ts=ts, rt=rt)
            elif tier.raise_fn(v, readings, t, rt):
                if not suspect and self._counted(i, tier, ts):
                    self._latch(i, ts)
            else:
                st.counts[i] = 0
                st.since[i] = UNSET
        target = 0
        for i in range(len(self.tiers) - 1, -1, -1):
            if st.latched[i]:
                target = self.tiers[i].level
                break
        return self._set_target(target, self._why(target, v, rt))

    def _counted(self, i: int, tier: CompiledTier, ts: int) -> bool:
        st = self.state
        if tier.count:
            st.counts[i] += 1
            return st.counts[i] >= tier.count
        if tier.for_ms:
            if st.since[i] == UNSET:
                st.since[i] = ts
            return ts - st.since[i] >= tier.for_ms
        return True

    def _latch(self, i: int, ts: int) -> None:
        st = self.state
        for j in range(i + 1):
            if not st.latched[j]:
                st.latched[j] = True
                st.latched_at[j] = ts
            st.counts[j] = 0
            st.since[j] = UNSET
            st.clear_since[j] = UNSET

    def _maybe_clear(
        self, i: int, *, tier: CompiledTier, v: float, r: Mapping[str, float], t: float, ts: int,
        rt: Runtime,
    ) -> None:  # fmt: skip
        st = self.state
        holds = tier.clear_fn(v, r, t, rt) if tier.clear_fn else not tier.raise_fn(v, r, t, rt)
        if not holds:
            st.clear_since[i] = UNSET
            return
        if st.clear_since[i] == UNSET:
            st.clear_since[i] = ts
        if ts - st.clear_since[i] >= tier.clear_for_ms and ts - st.latched_at[i] >= tier.dwell_ms:
            st.latched[i] = False
            st.latched_at[i] = UNSET
            st.clear_since[i] = UNSET

    def _why(self, target: int, v: float, rt: Runtime) -> str:
        metric = self.rule.rule.metric
        if target == 0:
            return f"{metric} back to normal ({v:.4g})"
        tier = next(t for t in self.tiers if t.level == target)
        pred = rt.prediction
        eta = f"; expected in {pred.time_to_s / 60:.0f} min" if pred is not None else ""
        return (tier.reason or f"{metric} = {v:.4g}") + eta


class StuckEvaluator(Evaluator):
    """A watched metric repeating the very same value ``readings`` times in a row."""

    __slots__ = ("level", "metrics")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        super().__init__(rule, state, device_id)
        self.metrics = tuple(rule.rule.metrics)
        self.level = level_of(rule.rule.tier)
        if len(state.aux) != 2 * len(self.metrics):
            state.aux = [float("nan"), 0.0] * len(self.metrics)

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        aux, need, worst = self.state.aux, float(self.rule.rule.readings), ""
        for k, m in enumerate(self.metrics):
            v = readings.get(m)
            if v is None:
                continue
            flagged = quality is not None and quality.get(m) == "stuck"
            aux[2 * k + 1] = need if flagged else (aux[2 * k + 1] + 1 if v == aux[2 * k] else 1.0)
            aux[2 * k] = v
            if aux[2 * k + 1] >= need:
                worst = m
        if not any(m in readings for m in self.metrics):
            return False
        self.state.value = max(aux[1::2], default=0.0)
        reason = f"{worst} stuck at {readings[worst]:.6g}" if worst else "sensor moving again"
        return self._set_target(self.level if worst else 0, reason)


class RangeEvaluator(Evaluator):
    """A watched metric outside its physical range (or flagged ``out_of_range``)."""

    __slots__ = ("level", "ranges")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        super().__init__(rule, state, device_id)
        table = raw_metrics(rule.kind)
        self.ranges = tuple((m, *table[m]) for m in rule.rule.metrics if m in table)
        self.level = level_of(rule.rule.tier)

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        seen, bad = False, ""
        for m, low, high in self.ranges:
            v = readings.get(m)
            if v is None:
                continue
            seen = True
            flagged = quality is not None and quality.get(m) == "out_of_range"
            if flagged or not low <= v <= high:
                bad = f"{m} = {v:.6g} outside {low:g}..{high:g}"
                self.state.value = v
        if not seen:
            return False
        return self._set_target(self.level if bad else 0, bad or "readings in range again")


class MissedCollectionEvaluator(Evaluator):
    """A bin still full ``grace`` after a collection hour: nobody emptied it."""

    __slots__ = ("categories", "level")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        super().__init__(rule, state, device_id)
        self.categories = tuple(m for m in raw_metrics("garbage") if m.startswith("fill_"))
        self.level = level_of(rule.rule.tier)
        if len(state.aux) != 1 + len(self.categories):
            state.aux = [-1.0] + [0.0] * len(self.categories)

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        spec, aux = self.rule.rule.missed, self.state.aux
        local_s = ts / 1000.0 + LOCAL_OFFSET_S
        day0, tod = local_s - local_s % 86_400, local_s % 86_400
        past = [h for h in sorted(spec.hours) if h * 3600 <= tod]
        start = day0 + past[-1] * 3600 if past else day0 - 86_400 + max(spec.hours) * 3600
        fills = [readings.get(c) for c in self.categories]
        if start != aux[0]:
            aux[0] = start
            aux[1:] = [f if f is not None else 0.0 for f in fills]
        for k, f in enumerate(fills):
            if f is not None:
                aux[1 + k] = min(aux[1 + k], f)
        if local_s - start < spec.grace:
            return False
        full = [c for k, c in enumerate(self.categories) if aux[1 + k] > spec.above_pct]
        self.state.value = max(aux[1:], default=0.0)
        reason = f"not collected: {', '.join(full)}" if full else "collected"
        return self._set_target(self.level if full else 0, reason)


def compile_threshold(rule: LoadedRule, state: RuleState, rt: Runtime) -> ThresholdEvaluator | None:
    """The evaluator of a threshold rule for one device; ``None`` if the device lacks inputs."""
    r = rule.rule
    extract = extractor(rule.kind, r.metric, rt.device) if r.metric else None
    if extract is None or r.metric is None:
        return None
    tiers = []
    for tier in r.tiers:
        raise_fn = compile_condition(tier.raise_, r.metric, rule.kind, rt)
        clear_fn = compile_condition(tier.clear, r.metric, rule.kind, rt) if tier.clear else None
        if raise_fn is None or (tier.clear is not None and clear_fn is None):
            return None
        tiers.append(CompiledTier(
            level_of(tier.tier), raise_fn, clear_fn, int((tier.for_s or 0) * 1000),
            tier.count or 0, int(tier.clear_for * 1000), int(tier.dwell * 1000), tier.reason,
        ))  # fmt: skip
    return ThresholdEvaluator(rule, state, rt, extract, tiers)
