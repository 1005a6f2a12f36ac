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
from alerting._model import Condition
from alerting._rules import TIER_ORDER, LoadedRule
from alerting._state import UNSET, RuleState
from telemetry_core.schema import Prediction

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
    fault_from: int = 0
    """Raise this tier on a failed read of the metric from this level up (0: never)."""


class Evaluator:
    """Base: the rule, its state, and what the last update saw."""

    __slots__ = ("idle", "key", "raised_with", "rule", "state")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        self.rule = rule
        self.state = state
        self.key = f"{device_id}\x1f{rule.name}"
        # While idle (nothing latched or counted) the engine may skip readings that its gates
        # (``_gates.py``) say cannot raise any tier. False until the first update decides.
        self.idle = False
        # The prediction of the condition that raised the target tier, for its transition:
        # only the tier that latched says why, not another tier's half-met condition.
        self.raised_with: Prediction | None = None

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        """Feed one reading; True if the target tier changed."""
        raise NotImplementedError

    @property
    def reason(self) -> str:
        """Why the target tier last changed (kept in the state: a release after a restart
        gives the same reason as without one)."""
        return self.state.reason

    def _set_target(self, target: int, reason: str, prediction: Prediction | None = None) -> bool:
        if target == self.state.target:
            return False
        self.raised_with = prediction if target > self.state.target else None
        self.state.target = target
        self.state.reason = reason
        return True


class ThresholdEvaluator(Evaluator):
    """Tiers with raise and clear conditions over a raw or derived metric."""

    __slots__ = ("extract", "faulting", "sources", "tiers")

    def __init__(
        self, rule: LoadedRule, state: RuleState, rt: Runtime, extract: Extractor,
        tiers: list[CompiledTier],
    ) -> None:  # fmt: skip
        super().__init__(rule, state, rt.device.device_id)
        self.extract = extract
        self.tiers = tiers
        self.faulting = tuple((i, t.fault_from) for i, t in enumerate(tiers) if t.fault_from)
        metric = rule.rule.metric or ""
        derived = DERIVED.get(rule.kind, {}).get(metric)
        self.sources = derived.needs if derived else (metric,)

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        if self.faulting and (failed := _failed(readings, quality, self.sources)) is not None:
            return self._on_fault(ts, failed, rt)
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
        carried = None  # what the condition of the highest tier latched now predicted
        for i, tier in enumerate(self.tiers):
            rt.prediction = None
            if st.latched[i]:
                self._maybe_clear(i, tier=tier, v=v, r=readings, t=t, ts=ts, rt=rt)
            elif tier.raise_fn(v, readings, t, rt):
                if not suspect and self._counted(i, tier, ts):
                    self._latch(i, ts)
                    carried = rt.prediction
            else:
                st.counts[i] = 0
                st.since[i] = UNSET
        target = 0
        for i in range(len(self.tiers) - 1, -1, -1):
            if st.latched[i]:
                target = self.tiers[i].level
                break
        self.idle = (
            target == 0 == st.tier and not any(st.counts) and all(x == UNSET for x in st.since)
        )
        if target == st.target:
            return False
        carried = carried if target > st.target else None
        return self._set_target(target, self._why(target, v, carried), carried)

    def _on_fault(self, ts: int, failed: str, rt: Runtime) -> bool:
        """A failed read of the metric: raise each ``fault_from`` tier the alert has reached."""
        st = self.state
        for i, from_level in self.faulting:
            if st.target >= from_level and not st.latched[i]:
                self._latch(i, ts)
        target = max((t.level for t, on in zip(self.tiers, st.latched, strict=True) if on),
                     default=0)  # fmt: skip
        self.idle = False
        if target <= st.target:
            return False
        tier = next(t for t in self.tiers if t.level == target)
        why = tier.reason or str(self.rule.rule.metric)
        return self._set_target(target, f"{why} (its {failed} read failed: sensor under water)")

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

    def _why(self, target: int, v: float, pred: Prediction | None) -> str:
        metric = self.rule.rule.metric
        if target == 0:
            return f"{metric} back to normal ({v:.4g})"
        tier = next(t for t in self.tiers if t.level == target)
        eta = f"; expected in {pred.time_to_s / 60:.0f} min" if pred is not None else ""
        return (tier.reason or f"{metric} = {v:.4g}") + eta


def _failed(
    readings: Mapping[str, float], quality: Mapping[str, str] | None, sources: tuple[str, ...]
) -> str | None:
    """The metric the rule needs whose read failed, if one did: left out of a reading that came (an
    edge agent sends every metric it could read, and the simulator leaves out what it could
    not), or flagged ``sensor_fault``."""
    for s in sources:
        if s not in readings or (quality is not None and quality.get(s) == "sensor_fault"):
            return s
    return None


class StuckEvaluator(Evaluator):
    """A watched metric repeating the very same value ``readings`` times in a row (or flagged
    ``stuck`` by the edge). ``state.aux`` holds the last values, then the repeat counts."""

    __slots__ = ("indexed", "level", "n", "need")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        super().__init__(rule, state, device_id)
        self.indexed = tuple(enumerate(rule.rule.metrics))
        self.n = len(self.indexed)
        self.need = float(rule.rule.readings)
        self.level = level_of(rule.rule.tier)
        if len(state.aux) != 2 * self.n:
            state.aux = [float("nan")] * self.n + [0.0] * self.n

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        aux, n, need = self.state.aux, self.n, self.need
        worst, seen = "", False
        for k, m in self.indexed:
            v = readings.get(m)
            if v is None:
                continue
            seen = True
            if v == aux[k]:
                aux[n + k] += 1.0
            else:
                aux[k], aux[n + k] = v, 1.0
            if quality and quality.get(m) == "stuck":
                aux[n + k] = need
            if aux[n + k] >= need:
                worst = m
        if not seen:
            return False
        target = self.level if worst else 0
        if target == self.state.target:
            return False
        self.state.value = max(aux[n:])
        reason = f"{worst} stuck at {readings[worst]:.6g}" if worst else "sensor moving again"
        return self._set_target(target, reason)


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
            if v < low or v > high or (quality and quality.get(m) == "out_of_range"):
                bad = m
        if not seen:
            return False
        target = self.level if bad else 0
        self.idle = target == 0
        if target == self.state.target:
            return False
        if bad:
            self.state.value = readings[bad]
            return self._set_target(target, f"{bad} = {readings[bad]:.6g} outside its range")
        return self._set_target(0, "readings in range again")


class MissedCollectionEvaluator(Evaluator):
    """A bin still full ``grace`` after a collection hour: nobody emptied it.

    ``state.aux`` holds the local start of the current collection window, whether the bin was
    seen from that start on (1.0) or only later (0.0), then per category the lowest fill seen
    since the window began. A window first seen more than ``grace`` after its start (the engine
    started, or the bin came back from an outage, in the middle of it) is not judged: the
    collection may have come and gone unseen, and a bin full now may have been emptied and
    refilled."""

    __slots__ = ("categories", "emptied", "level", "window_end_s")

    def __init__(self, rule: LoadedRule, state: RuleState, device_id: str) -> None:
        super().__init__(rule, state, device_id)
        self.categories = tuple(m for m in raw_metrics("garbage") if m.startswith("fill_"))
        self.level = level_of(rule.rule.tier)
        self.window_end_s = -1.0
        self.emptied = False
        if len(state.aux) != 2 + len(self.categories):
            state.aux = [-1.0, 0.0] + [0.0] * len(self.categories)

    def _window(self, local_s: float) -> tuple[float, float]:
        hours = sorted(self.rule.rule.missed.hours)
        day0, tod = local_s - local_s % 86_400, local_s % 86_400
        past = [h for h in hours if h * 3600 <= tod]
        start = day0 + past[-1] * 3600 if past else day0 - 86_400 + hours[-1] * 3600
        later = [h for h in hours if h * 3600 > tod]
        end = day0 + later[0] * 3600 if later else day0 + 86_400 + hours[0] * 3600
        return start, end

    def update(
        self, ts: int, readings: Mapping[str, float], quality: Mapping[str, str] | None,
        rt: Runtime,
    ) -> bool:  # fmt: skip
        spec, aux, cats = self.rule.rule.missed, self.state.aux, self.categories
        local_s = ts / 1000.0 + LOCAL_OFFSET_S
        if aux[0] <= local_s < self.window_end_s:
            if self.emptied:
                return False  # every bin was seen low in this window: nothing can change
        else:
            start, self.window_end_s = self._window(local_s)
            self.emptied = False
            if start != aux[0]:
                aux[0] = start
                aux[1] = 1.0 if local_s - start <= spec.grace else 0.0
                aux[2:] = [readings.get(c, 0.0) for c in cats]
        for k, c in enumerate(cats, 2):
            f = readings.get(c)
            if f is not None and f < aux[k]:
                aux[k] = f
        if local_s - aux[0] < spec.grace:
            return False
        if aux[1] == 0.0:  # seen too late to judge: the tier stays as the last window left it
            self.emptied = True
            return False
        full = [c for k, c in enumerate(cats, 2) if aux[k] > spec.above_pct]
        self.emptied = not full
        target = self.level if full else 0
        if target == self.state.target:
            return False
        self.state.value = max(aux[2:])
        why = f"not collected: {', '.join(full)}" if full else "collected"
        return self._set_target(target, why)


def _static(cond: Condition | None, kind: str) -> bool:
    """Whether a compiled condition is the same for every device (shareable)."""
    if cond is None:
        return True
    if cond.predict or cond.rate or cond.rain or cond.capacity or cond.head or cond.hgl:
        return False
    if cond.downstream or cond.upstream:
        return False
    if cond.metric is not None and cond.metric in DERIVED.get(kind, {}):
        return False
    return all(_static(c, kind) for c in (*cond.all, *cond.any))


def _never(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
    return False


def compile_threshold(
    rule: LoadedRule, state: RuleState, rt: Runtime, cache: dict[str, list[CompiledTier]]
) -> ThresholdEvaluator | None:
    """The evaluator of a threshold rule for one device; ``None`` if the device lacks inputs.

    Tiers whose conditions look only at this reading's values are compiled once per rule and
    shared through ``cache``; the others (fits, rain, neighbours) are compiled per device.
    """
    r = rule.rule
    extract = extractor(rule.kind, r.metric, rt.device) if r.metric else None
    if extract is None or r.metric is None:
        return None
    shared = all(_static(t.raise_, rule.kind) and _static(t.clear, rule.kind) for t in r.tiers)
    if shared and rule.name in cache:
        return ThresholdEvaluator(rule, state, rt, extract, cache[rule.name])
    tiers = []
    for tier in r.tiers:
        # A tier whose condition needs what this device lacks (rain gauges, a network node)
        # never raises here; the rule's other tiers still apply. A clear that cannot be
        # compiled falls back to "the raise no longer holds".
        raise_fn = compile_condition(tier.raise_, r.metric, rule.kind, rt) or _never
        clear_fn = compile_condition(tier.clear, r.metric, rule.kind, rt) if tier.clear else None
        tiers.append(CompiledTier(
            level_of(tier.tier), raise_fn, clear_fn, int((tier.for_s or 0) * 1000),
            tier.count or 0, int(tier.clear_for * 1000), int(tier.dwell * 1000), tier.reason,
            level_of(tier.fault_from) if tier.fault_from is not None else 0,
        ))  # fmt: skip
    if shared:
        cache[rule.name] = tiers
    return ThresholdEvaluator(rule, state, rt, extract, tiers)
