"""Compile a rule's conditions into plain closures, once per (device, rule).

A compiled condition is ``fn(value, readings, t_s, rt) -> bool``: ``value`` is the rule's metric
in this reading, ``rt`` the device's runtime (its histories, its node, its rain gauges, and the
engine-wide views of rain and of node values). Cheap parts run first; a fit runs only when every
comparison before it holds.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from alerting._derived import Extractor, extractor
from alerting._fit import points_within, theil_sen
from alerting._forecast import Forecaster
from alerting._hydraulics import (
    PathPipe,
    head_constants,
    path_constants,
    predicted_surface_m,
    steady_surface_m,
)
from alerting._model import (
    Capacity,
    Condition,
    Forecast,
    Head,
    Hgl,
    Neighbour,
    Predict,
    Rain,
    Rate,
)  # fmt: skip
from alerting._network import Network
from alerting._nowcast import Nowcast
from telemetry_core.registry import Device
from telemetry_core.schema import Prediction

HISTORY_POINTS: Final = 64
OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "above": operator.gt, "below": operator.lt, "at_least": operator.ge, "at_most": operator.le,
}  # fmt: skip


@dataclass(slots=True)
class World:
    """What every device's conditions may look at: rain per gauge, latest values per node."""

    network: Network | None
    rain: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    node_values: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    nowcast: Nowcast = field(default_factory=Nowcast)
    hgl_paths: dict[tuple[str, int], HglPath | None] = field(default_factory=dict)
    forecaster: Forecaster | None = None


@dataclass(slots=True)
class Runtime:
    """One device's runtime: histories for fits, its node and gauges, the last prediction."""

    device: Device
    world: World
    node: str | None
    gauges: tuple[str, ...]
    history: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    feeds: list[tuple[str, Extractor]] = field(default_factory=list)
    node_feeds: list[tuple[str, Extractor]] = field(default_factory=list)
    prediction: Prediction | None = None
    gauge: bool = False

    def track(self, metric: str, fn: Extractor) -> None:
        """Keep a history of ``metric`` (for fits), fed once per reading."""
        if metric not in self.history:
            self.history[metric] = deque(maxlen=HISTORY_POINTS)
            self.feeds.append((metric, fn))

    def publish(self, metric: str, fn: Extractor) -> None:
        """Publish ``metric`` as this device's node's latest value (for neighbour conditions)."""
        if self.node is not None and all(m != metric for m, _ in self.node_feeds):
            self.node_feeds.append((metric, fn))


CondFn = Callable[[float, Mapping[str, float], float, Runtime], bool]


def _missing(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
    return False


_MISSING: Final[CondFn] = _missing
"""A builder's answer when the device lacks what the part needs: the rule does not apply."""


def compile_condition(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    """The closure for ``cond``; ``None`` if the device lacks what it needs (rule skipped)."""
    parts: list[CondFn] = []
    cmp = cond.comparator()
    if cmp is not None:
        part = _comparison(cmp, cond.metric, metric, kind, rt.device)
        if part is None:
            return None
        parts.append(part)
    for sub in cond.all:
        compiled = compile_condition(sub, metric, kind, rt)
        if compiled is None:
            return None
        parts.append(compiled)
    if cond.any:
        options = [compile_condition(sub, metric, kind, rt) for sub in cond.any]
        usable = [o for o in options if o is not None]
        if not usable:
            return None
        parts.append(_any(usable))
    for builder in (_neighbours, _rain, _capacity, _head, _hgl, _forecast, _rate, _predict):
        built = builder(cond, metric, kind, rt)
        if built is _MISSING:
            return None
        if built is not None:
            parts.append(built)
    return _all(parts)


def _any(options: list[CondFn]) -> CondFn:
    def any_of(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        before = rt.prediction
        for option in options:
            if option(v, r, t, rt):
                return True
            rt.prediction = before  # what a failed option predicted is not why the tier rose
        return False

    return any_of


def _all(parts: list[CondFn]) -> CondFn:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda v, r, t, rt: a(v, r, t, rt) and b(v, r, t, rt)
    return lambda v, r, t, rt: all(p(v, r, t, rt) for p in parts)


def _comparison(
    cmp: tuple[str, float], other: str | None, metric: str, kind: str, device: Device
) -> CondFn | None:
    op, threshold = OPS[cmp[0]], cmp[1]
    if other is None or other == metric:
        if cmp[0] == "above":
            return lambda v, r, t, rt: v > threshold
        if cmp[0] == "below":
            return lambda v, r, t, rt: v < threshold
        return lambda v, r, t, rt: op(v, threshold)
    fn = extractor(kind, other, device)
    if fn is None:
        return None

    def compare_other(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        x = fn(r)
        return x is not None and op(x, threshold)

    return compare_other


def _neighbours(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    parts = []
    for side, nb in (("downstream", cond.downstream), ("upstream", cond.upstream)):
        if nb is None:
            continue
        net = rt.world.network
        if net is None or rt.node is None or rt.node not in net.nodes:
            return _MISSING
        parts.append(_neighbour(side, nb, net, rt.node))
    return _all(parts) if parts else None


def _neighbour(side: str, nb: Neighbour, net: Network, node: str) -> CondFn:
    cmp = nb.comparator()
    if cmp is None:
        raise ValueError(f"{side}: give one of above, below, at_least, at_most")
    op, threshold, name, max_age = OPS[cmp[0]], cmp[1], nb.metric, nb.max_age
    if side == "downstream":
        down = net.nodes[node].downstream
        targets: tuple[str, ...] = () if down is None else (down,)
    else:
        targets = net.upstream.get(node, ())

    def neighbour(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        values = rt.world.node_values
        for target in targets:
            seen = values.get(target, {}).get(name)
            if seen is not None and t - seen[0] <= max_age and op(seen[1], threshold):
                return True
        return False

    return neighbour


def _rain(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Rain | None = cond.rain
    if spec is None:
        return None
    gauges = rt.gauges[: spec.nearest]
    if not gauges:
        return _MISSING
    over = spec.over
    above = spec.above_mmh

    def rain(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        mean = mean_rain_mmh(rt.world, gauges, t, over)
        if mean is None:
            return False
        return mean > above if above is not None else mean < (spec.below_mmh or 0.0)

    return rain


def mean_rain_mmh(world: World, gauges: tuple[str, ...], t: float, over_s: float) -> float | None:
    """Mean intensity over the last ``over_s`` across ``gauges``; ``None`` without data."""
    total, n = 0.0, 0
    for g in gauges:
        for ts, mmh in reversed(world.rain.get(g, ())):
            if t - ts > over_s:
                break
            if ts <= t:
                total += mmh
                n += 1
    return total / n if n else None


LOAD_METRIC: Final = "rain_over_critical"
"""The prediction's metric when a capacity condition raised the tier: measured rain over the
pipe's critical intensity (the expected load of the pipe, 1 = running full)."""


def _capacity(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Capacity | None = cond.capacity
    if spec is None:
        return None
    net, node = rt.world.network, rt.node
    unknown = None if spec.unknown == "holds" else _MISSING
    if net is None or node is None or node not in net.nodes:
        return unknown
    target = node if spec.node == "self" else net.nodes[node].downstream
    i_crit = net.critical_rain.get(target) if target is not None else None
    gauges = rt.gauges[: spec.nearest]
    cmp = spec.comparator()
    if i_crit is None or not gauges or cmp is None:
        return unknown
    op, limit_mmh, over = OPS[cmp[0]], cmp[1] * i_crit, spec.over  # precomputed per device
    rising = cmp[0] in ("above", "at_least")
    prediction = Prediction(metric=LOAD_METRIC, time_to_s=spec.horizon, horizon_s=spec.horizon)

    def capacity(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        mean = mean_rain_mmh(rt.world, gauges, t, over)
        if mean is None or not op(mean, limit_mmh):
            return False
        if rising:
            rt.prediction = prediction  # a fit later in the condition, if any, says more
        return True

    return capacity


def _head(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Head | None = cond.head
    if spec is None:
        return None
    net, node = rt.world.network, rt.node
    unknown = None if spec.unknown == "holds" else _MISSING
    consts = None
    if net is not None and node is not None and node in net.nodes:
        consts = head_constants(net, node)
    gauges = rt.gauges[: spec.nearest]
    flow = extractor(kind, "flow_m3s", rt.device) if spec.load == "max" else None
    if consts is None or not gauges:
        return unknown
    c, over, max_age = consts, spec.over, spec.max_age
    limit_m = c.ground_m - spec.within_m  # precomputed per device

    def head(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        seen = rt.world.node_values.get(c.below, {}).get("level_m")
        if seen is not None and t - seen[0] <= max_age:
            below = seen[1]
        elif c.below_full_m is not None:
            below = c.below_full_m - c.below_invert_m
        else:
            return False
        mean = mean_rain_mmh(rt.world, gauges, t, over)
        if mean is None:
            return False
        load = mean / c.i_crit_mmh
        if flow is not None and (q := flow(r)) is not None:
            load = max(load, q / c.capacity_m3s)
        return predicted_surface_m(c, below, load) >= limit_m

    return head


HglPath = tuple[float, tuple[PathPipe, ...], tuple[tuple[tuple[str, ...], float], ...], float]
"""What ``hgl`` needs of a node: the outfall's level, the pipes up to the node, each pipe's
gauges and critical intensity, the ground here."""


def _hgl_path(world: World, node: str, nearest: int) -> HglPath | None:
    """The node's path constants, computed once per (node, nearest) for the whole fleet."""
    key = (node, nearest)
    if key in world.hgl_paths:
        return world.hgl_paths[key]
    net = world.network
    found = path_constants(net, node) if net is not None and net.rain_gauges else None
    path: HglPath | None = None
    if net is not None and found is not None:
        base, pipes = found
        loads = tuple((net.nearest_gauges(p.lat, p.lon, nearest), p.i_crit_mmh) for p in pipes)
        path = (base, pipes, loads, net.nodes[node].ground_elev_m)
    world.hgl_paths[key] = path
    return path


def _hgl(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Hgl | None = cond.hgl
    if spec is None:
        return None
    net, node = rt.world.network, rt.node
    path = None
    if net is not None and node is not None and node in net.nodes:
        path = _hgl_path(rt.world, node, spec.nearest)
    if path is None:
        return None if spec.unknown == "holds" else _MISSING
    base, pipes, loads, ground = path
    limit_m, ahead, over = ground + spec.above_m, spec.ahead, spec.over

    def hgl(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        world = rt.world
        ratios = []
        for names, i_crit in loads:
            total, n = 0.0, 0
            for g in names:
                f = world.nowcast.forecast_mmh(world.rain, g, t, ahead, over)
                if f is not None:
                    total, n = total + f, n + 1
            if not n:
                return False
            ratios.append(total / n / i_crit)
        return steady_surface_m(base, pipes, ratios) >= limit_m

    return hgl


def _forecast(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Forecast | None = cond.forecast
    if spec is None:
        return None
    forecaster, node = rt.world.forecaster, rt.node
    if forecaster is None or node is None or node not in forecaster.model.junction_ids:
        return None if spec.unknown == "holds" else _MISSING
    persist, within, margin, max_age = spec.persist, spec.within, spec.margin_m, spec.max_age

    def flood_in(t: float) -> float | None:
        by_node = forecaster.forecasts.get(persist)
        fc = by_node.get(node) if by_node else None
        if fc is None or t - fc.issued_s > max_age:
            return None
        return fc.first_within(t, within, margin)

    if spec.expect == "dry":
        return lambda v, r, t, rt: flood_in(t) is None
    if spec.expect == "blind":
        return lambda v, r, t, rt: not forecaster.sees_rain_coming(node)

    def forecast(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        time_to = flood_in(t)
        if time_to is None:
            return False
        rt.prediction = Prediction(metric="freeboard_m", time_to_s=time_to, horizon_s=within)
        return True

    return forecast


def _tracked(name: str, kind: str, rt: Runtime) -> str | None:
    """Keep a history of metric ``name`` for a fit; ``None`` if the device cannot give it."""
    fn = extractor(kind, name, rt.device)
    if fn is None:
        return None
    rt.track(name, fn)
    return name


def _rate(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Rate | None = cond.rate
    if spec is None:
        return None
    name = _tracked(spec.metric or metric, kind, rt)
    if name is None:
        return _MISSING
    above, below = spec.above_per_h, spec.below_per_h

    def rate(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        hist = rt.history[name]
        if points_within(hist, t, spec.window) < spec.min_points:
            return False
        trend = theil_sen(hist, t, spec.window)
        if trend is None:
            return False
        per_h = trend.rate_per_s * 3600.0
        return per_h > above if above is not None else per_h < (below or 0.0)

    return rate


def _predict(cond: Condition, metric: str, kind: str, rt: Runtime) -> CondFn | None:
    spec: Predict | None = cond.predict
    if spec is None:
        return None
    name = _tracked(spec.metric or metric, kind, rt)
    if name is None:
        return _MISSING
    rising = spec.direction == "rising"

    def predict(v: float, r: Mapping[str, float], t: float, rt: Runtime) -> bool:
        hist = rt.history[name]
        if points_within(hist, t, spec.window) < spec.min_points:
            return spec.beyond is not None  # too little data: nothing predicted
        trend = theil_sen(hist, t, spec.window)
        if trend is None:
            return spec.beyond is not None
        time_to = trend.time_to(spec.reaches, rising=rising)
        if spec.within is not None:
            if time_to > spec.within:
                return False
            rt.prediction = Prediction(
                metric=name, time_to_s=round(time_to, 1), horizon_s=spec.within,
                rate_per_s=trend.rate_per_s if math.isfinite(trend.rate_per_s) else None,
            )  # fmt: skip
            return True
        return time_to > (spec.beyond or 0.0)

    return predict
