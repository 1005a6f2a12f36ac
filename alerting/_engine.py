"""The engine: readings in, alert transitions out, in event time, with no I/O and no clock.

Everything time-dependent uses the readings' own ``ts`` (and, for silent devices, the watermark
``tick(now_s)`` is given), so a live run, a replay and a backtest of the same data give the same
transitions with the same ids. ``delta()`` / ``Engine.restore_parts()`` carry every duration,
count, fit window and last-seen time across a restart, a checkpoint writing only the parts
(devices, nodes, gauges) changed since the previous one (``_snapshot``); ``snapshot()`` /
``Engine.restore()`` do the same with the whole state at once.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Self

from alerting._conditions import HISTORY_POINTS, Runtime, World
from alerting._derived import extractor
from alerting._evaluate import (
    CompiledTier,
    Evaluator,
    MissedCollectionEvaluator,
    RangeEvaluator,
    StuckEvaluator,
    compile_threshold,
    level_of,
)
from alerting._forecast import ISSUE_DELAY_S, ForecastCounts, Forecaster
from alerting._gates import Gate, arming_gates, evaluator_gates, merge_gates, outside
from alerting._hygiene import Silence, note_change, refresh_flapping, stable_id
from alerting._incidents import GROUPED_CATEGORIES, IncidentTracker
from alerting._network import Network, network_from_registry
from alerting._rules import LoadedRule, RuleSet
from alerting._snapshot import assemble
from alerting._state import (
    DECODER,
    DEVICE_PREFIX,
    ENCODER,
    META_KEY,
    NODE_PREFIX,
    RAIN_PREFIX,
    SNAPSHOT_VERSION,
    UNSET,
    DevicePart,
    IncidentState,
    MetaPart,
    RuleState,
    Snapshot,
    StateDelta,
)
from telemetry_core.kinds import kind_spec
from telemetry_core.registry import Device
from telemetry_core.schema import (
    CONTRACT_VERSION,
    AlertTransition,
    Event,
    Incident,
    Status,
    Telemetry,
    TierName,
)
from telemetry_core.topics import Topic

_NONE: Final[list[AlertTransition]] = []
TIER_NAMES: Final[tuple[TierName, ...]] = ("none", "blue", "yellow", "orange", "red")
RAIN_POINTS: Final = 240
_RAIN_SPEC: Final = kind_spec("rain").metrics["rain_mmh"]
GAUGES_PER_DEVICE: Final = 4
FLAP_STEP_MS: Final = 60_000
"""Flapping windows slide at each minute of event time (``slide_flapping``)."""
HEALTH_TYPES: Final = frozenset({"silent", "offline"})
_NEVER: Final = 2**62


class _Device:
    """One device's compiled evaluators, health rules and runtime."""

    __slots__ = (
        "arm", "awake", "device", "evaluators", "last_seen", "last_ts", "merged", "offline",
        "persist", "plan", "rt", "silent", "silent_raised", "ungated", "was_armed",
    )  # fmt: skip

    def __init__(self, device: Device, rt: Runtime) -> None:
        self.device = device
        self.rt = rt
        self.evaluators: list[Evaluator] = []
        self.silent: list[Evaluator] = []
        self.offline: list[Evaluator] = []
        self.last_seen = UNSET
        self.last_ts = UNSET
        self.silent_raised = False
        self.plan: list[tuple[Evaluator, tuple[Gate, ...] | None]] = []
        self.ungated: list[tuple[Evaluator, tuple[Gate, ...] | None]] = []
        self.merged: tuple[Gate, ...] = ()
        self.awake: set[Evaluator] = set()
        # Fit windows and node values are fed only while armed: some value near a gate of a
        # rule that fits (``arming_gates``), so a quiet device costs no history.
        self.arm: tuple[Gate, ...] | None = None
        self.was_armed = True
        self.persist: tuple[tuple[str, Evaluator], ...] = ()
        """(rule name, evaluator) of every evaluator: whose states a checkpoint holds."""


class Engine:
    """Tiered rule engine over a fleet. Not thread-safe: one engine per consumer thread."""

    def __init__(
        self,
        rules: RuleSet,
        devices: Iterable[Device],
        network: Network | None = None,
        silences: Sequence[Silence] | None = None,
    ) -> None:
        self.rules = rules
        fleet = list(devices)
        self.network = network if network is not None else network_from_registry(fleet)
        self.world = World(self.network)
        scenarios = _forecast_scenarios(rules)
        if self.network is not None and scenarios:
            self.world.forecaster = Forecaster.for_network(self.network, scenarios)
        self.silences: list[Silence] = list(silences or ())
        self.incidents = IncidentTracker(self.network) if self.network is not None else None
        self._states: dict[str, RuleState] = {}
        self._tier_cache: dict[str, list[CompiledTier]] = {}
        self._active: dict[str, tuple[_Device, Evaluator]] = {}
        self._silent_watch: list[tuple[_Device, Evaluator, float]] = []
        self._devices: dict[str, _Device] = {}
        self._start_ms = UNSET
        self._watermark_ms = UNSET
        self.late_readings = 0
        """Readings not after their device's newest evaluated one (a redelivery, or a backfill
        behind live readings): they change nothing (docs/alerting.md, "Historical readings")."""
        self._forecast_due_ms = -_NEVER if self.world.forecaster is not None else _NEVER
        """When event time next issues or applies a forecast (``_forecast_step``), in ms."""
        self._status: dict[str, str] = {}
        self._gauges = set(self.network.rain_gauges) if self.network is not None else set()
        # What changed since the last ``delta()``: only that is encoded and written.
        self._dirty: set[_Device] = set()
        self._dirty_nodes: set[str] = set()
        self._dirty_gauges: set[str] = set()
        self._deleted: set[str] = set()
        self._encoded: dict[str, bytes] = {}
        """Device parts encoded ahead of the next delta, while the service was idle."""
        self._full = True  # the first delta replaces whatever a store holds
        self._part_bytes: dict[str, int] = {}
        self._state_bytes = 0
        self._flap_slide_ms = UNSET
        self._flap_watch: dict[str, tuple[_Device, Evaluator]] = {}
        """Value evaluators whose flapping window holds changes: all that a slide can alter."""
        neighbour_metrics = _neighbour_metrics(rules)
        for device in fleet:
            ctx = self._compile(device, neighbour_metrics)
            self._devices[device.device_id] = ctx
            for ev in ctx.silent:
                limit_ms = ev.rule.rule.after_intervals * device.expected_interval_s * 1000
                self._silent_watch.append((ctx, ev, limit_ms))

    # -- compilation --------------------------------------------------------------------------

    def _compile(self, device: Device, neighbour_metrics: set[str]) -> _Device:
        net = self.network
        node = net.node_of(device.device_id) if net is not None else None
        gauges = net.nearest_gauges(device.lat, device.lon, GAUGES_PER_DEVICE) if net else ()
        ctx = _Device(device, Runtime(device, self.world, node, gauges))
        for rule in self.rules.for_device(device):
            ev = self._evaluator(rule, ctx)
            if ev is None:
                continue
            target = {"silent": ctx.silent, "offline": ctx.offline}.get(rule.rule.type)
            (target if target is not None else ctx.evaluators).append(ev)
        fc = self.world.forecaster
        forecast = fc is not None and node is not None and node in fc.model.junction_ids
        ctx.plan = [(ev, evaluator_gates(ev, device, forecast)) for ev in ctx.evaluators]
        ctx.ungated = [(ev, g) for ev, g in ctx.plan if g is None]
        ctx.merged = merge_gates([g for _, g in ctx.plan if g is not None])
        ctx.awake = {ev for ev, g in ctx.plan if g is not None}
        ctx.arm = arming_gates([g for ev, g in ctx.plan if _fits(ev)])
        ctx.rt.gauge = device.device_id in self._gauges or device.kind.value == "rain"
        evaluators = (*ctx.evaluators, *ctx.silent, *ctx.offline)
        ctx.persist = tuple((ev.rule.name, ev) for ev in evaluators)
        if node is not None and device.kind.value == "drain":
            for metric in sorted(neighbour_metrics | {"fill_ratio"}):
                fn = extractor("drain", metric, device)
                if fn is not None:
                    ctx.rt.publish(metric, fn)
        return ctx

    def _evaluator(self, rule: LoadedRule, ctx: _Device) -> Evaluator | None:
        device_id = ctx.device.device_id
        key = f"{device_id}\x1f{rule.name}"
        state = self._states.get(key) or RuleState.fresh(len(rule.rule.tiers))
        kind = rule.rule.type
        ev: Evaluator | None
        if kind == "threshold":
            ev = compile_threshold(rule, state, ctx.rt, self._tier_cache)
        elif kind == "stuck":
            ev = StuckEvaluator(rule, state, device_id)
        elif kind == "out_of_range":
            ev = RangeEvaluator(rule, state, device_id)
        elif kind == "missed_collection":
            ev = MissedCollectionEvaluator(rule, state, device_id)
        else:
            ev = Evaluator(rule, state, device_id)
        if ev is not None:
            self._states[key] = state
        return ev

    # -- input ----------------------------------------------------------------------------------

    def on_telemetry(self, topic: Topic, msg: Telemetry) -> list[AlertTransition]:  # noqa: PLR0912 - the hot path, inlined on purpose
        """Evaluate one batch of readings; the transitions it causes (usually none)."""
        ctx = self._devices.get(msg.device_id)
        ts = msg.ts
        if ctx is None or ts <= ctx.last_ts:
            if ctx is not None:
                self.late_readings += 1
            return self._unevaluated(ctx, msg)
        self._watermark_ms = max(self._watermark_ms, ts)
        if self._watermark_ms >= self._forecast_due_ms:
            self._forecast_step(self._watermark_ms)
        if ts < self._start_ms or self._start_ms == UNSET:
            self._start_ms = ts
        out: list[AlertTransition] | None = None
        ctx.last_seen = ctx.last_ts = ts
        self._dirty.add(ctx)
        if ctx.silent_raised:
            out = self._heard(ctx, ts, msg.historical)
        readings, rt = msg.readings, ctx.rt
        if rt.gauge:  # every reading, dry ones too: rain conditions average the window
            self._rain(rt.device.device_id, ts / 1000.0, readings)
        if rt.feeds or rt.node_feeds:
            armed = ctx.arm is None or bool(ctx.awake) or outside(ctx.arm, readings)
            if armed or ctx.was_armed:  # once more after disarming: overwrite high node values
                self._feed(rt, ts / 1000.0, readings)
            ctx.was_armed = armed
        quality = msg.quality
        plan = ctx.plan
        if not ctx.awake and not quality:
            for m, lo, hi in ctx.merged:
                v = readings.get(m)
                if v is not None and not lo < v < hi:
                    break
            else:
                plan = ctx.ungated  # every gated evaluator idle, every value inside its gates
        for ev, gates in plan:
            if ev.idle and gates is not None:
                for m, lo, hi in gates:
                    v = readings.get(m)
                    if v is not None and not lo < v < hi:
                        break
                else:
                    continue  # idle, and no tier can raise on these values
            if ev.update(ts, readings, quality, rt):
                out = out if out is not None else []
                self._transition(ctx, ev, ts, msg.historical, out)
            elif ev.state.flapping:
                out = out if out is not None else []
                self._release(ctx, ev, ts, msg.historical, out)
            if gates is not None:
                (ctx.awake.discard if ev.idle else ctx.awake.add)(ev)
        return out or _NONE

    def _unevaluated(self, ctx: _Device | None, msg: Telemetry) -> list[AlertTransition]:
        """A reading of an unknown device (rain kept if it is a gauge of the network), or a
        duplicate or late one: it cannot rewrite the past, nor show the device alive now."""
        if ctx is None and msg.device_id in self._gauges:
            self._rain(msg.device_id, msg.ts / 1000.0, msg.readings)
        return _NONE

    def _feed(self, rt: Runtime, t: float, readings: Mapping[str, float]) -> None:
        for metric, fn in rt.feeds:
            v = fn(readings)
            if v is not None:
                rt.history[metric].append((t, v))
        if rt.node_feeds:
            node = rt.node or ""
            self._dirty_nodes.add(node)
            values = self.world.node_values.get(node)
            if values is None:
                values = self.world.node_values[node] = {}
            for metric, fn in rt.node_feeds:
                v = fn(readings)
                if v is not None:
                    values[metric] = (t, v)

    def _rain(self, gauge: str, t: float, readings: Mapping[str, float]) -> None:
        mmh = readings.get("rain_mmh")
        # Only rain that can fall enters the window the rain conditions, the nowcast and the
        # forecast's model read (an impossible value is the out-of-range rule's to report).
        if mmh is not None and _RAIN_SPEC.in_range(mmh):
            self.world.rain.setdefault(gauge, deque(maxlen=RAIN_POINTS)).append((t, mmh))
            self._dirty_gauges.add(gauge)

    def _heard(self, ctx: _Device, ts: int, historical: bool) -> list[AlertTransition] | None:
        ctx.last_seen = max(ctx.last_seen, ts)
        ctx.silent_raised = False
        self._dirty.add(ctx)
        out: list[AlertTransition] = []
        for ev in ctx.silent:
            if ev.state.target and ev._set_target(0, "heard from again"):
                self._transition(ctx, ev, ts, historical, out)
        return out or None

    def on_event(self, topic: Topic, msg: Event) -> list[AlertTransition]:
        """A device event: the device is alive (silent alerts clear); no rule reads events yet."""
        ctx = self._devices.get(msg.device_id)
        if ctx is None or not ctx.silent or msg.ts <= ctx.last_seen:
            return _NONE
        self._watermark_ms = max(self._watermark_ms, msg.ts)
        return self._heard(ctx, msg.ts, msg.historical) or _NONE

    def on_status(self, topic: Topic, msg: Status) -> list[AlertTransition]:
        """Birth (``online``) clears an offline alert; a last will (``offline``) raises it."""
        ctx = self._devices.get(msg.device_id)
        if ctx is None:
            return _NONE
        self._status[msg.device_id] = msg.state
        self._dirty.add(ctx)
        out: list[AlertTransition] = []
        for ev in ctx.offline:
            offline = msg.state == "offline"
            level = level_of(ev.rule.rule.tier) if offline else 0
            why = f"offline: {msg.reason or 'last will'}" if offline else "online again"
            if ev._set_target(level, why):
                self._transition(ctx, ev, msg.ts, False, out)
        return out

    def tick(self, now_s: float) -> list[AlertTransition]:
        """Advance the watermark to ``now_s``: raise silent devices, send repeat reminders."""
        now = int(now_s * 1000)
        if self._start_ms == UNSET:
            self._start_ms = now
        self._watermark_ms = max(self._watermark_ms, now)
        if self._watermark_ms >= self._forecast_due_ms:
            self._forecast_step(self._watermark_ms)
        out: list[AlertTransition] = []
        start = self._start_ms
        for ctx, ev, limit_ms in self._silent_watch:
            since = ctx.last_seen if ctx.last_seen != UNSET else start
            if now - since > limit_ms and not ev.state.target:
                self._raise_silent(ctx, ev, now, since, out)
        self._reminders(now, out)
        return out

    def _forecast_step(self, now_ms: int) -> None:
        """Event time reached ``now_ms``: the pending forecast takes effect if its time came,
        and the next is issued once event time is ``ISSUE_DELAY_S`` past its boundary (so the
        readings up to the boundary are in, live as in a replay; module doc of _forecast)."""
        forecaster = self.world.forecaster
        if forecaster is None:
            self._forecast_due_ms = _NEVER
            return
        now_s = now_ms / 1000.0
        if now_s >= forecaster.effect_s:
            forecaster.settle()
        if forecaster.due(now_s - ISSUE_DELAY_S):
            forecaster.issue(now_s - ISSUE_DELAY_S, self.world.rain, self.world.nowcast)
            if now_s >= forecaster.effect_s:
                forecaster.settle()  # a replay's input can jump past both at once
        due_s = min(forecaster.effect_s, forecaster.next_issue_s + ISSUE_DELAY_S)
        self._forecast_due_ms = int(due_s * 1000) if math.isfinite(due_s) else _NEVER

    def forecast_counts(self) -> ForecastCounts | None:
        """What the forecast did so far; ``None`` if the rules ask for no forecast or the
        network file allows none."""
        fc = self.world.forecaster
        return None if fc is None else fc.counts()

    def close(self) -> None:
        """Stop the forecast's SWMM worker, if one runs; the engine may go on without it."""
        if self.world.forecaster is not None:
            self.world.forecaster.close()

    def _raise_silent(
        self, ctx: _Device, ev: Evaluator, now: int, since: int, out: list[AlertTransition]
    ) -> None:
        what = "never heard from" if ctx.last_seen == UNSET else "silent"
        gap = (now - since) / 60_000
        if ev._set_target(level_of(ev.rule.rule.tier), f"{what} for {gap:.0f} min"):
            ev.state.value = gap
            ctx.silent_raised = True
            self._transition(ctx, ev, now, False, out)

    def _reminders(self, now: int, out: list[AlertTransition]) -> None:
        """A notified alert still standing after its rule's ``repeat`` is told again."""
        for ctx, ev in list(self._active.values()):
            st = ev.state
            repeat_ms = ev.rule.rule.repeat * 1000
            due = st.last_notify_ms != UNSET and now - st.last_notify_ms >= repeat_ms
            if st.tier and due and repeat_ms > 0 and not st.flapping:
                if self._muted(ctx.device, ev.rule.name, now):
                    continue  # a silence that began after the alert mutes its reminders too
                out.append(self._message(ctx, ev, st.tier, now, notify=True, reason="reminder"))
                st.last_notify_ms = now
                self._dirty.add(ctx)

    # -- transitions ----------------------------------------------------------------------------

    def _transition(
        self, ctx: _Device, ev: Evaluator, ts: int, historical: bool, out: list[AlertTransition],
        *, change: bool = True,
    ) -> None:  # fmt: skip
        st, rule = ev.state, ev.rule.rule
        self._dirty.add(ctx)
        # An alert's transitions never go back in time: a backfilled reading from inside a
        # silence clears the silent alert raised after it at the raise's time, not before it
        # (the map's current tier is the latest transition by time).
        floor = max(st.opened_ms if st.tier else UNSET, st.changes[-1] if st.changes else UNSET)
        ts = max(ts, floor)
        was_flapping = st.flapping
        if change:
            note_change(st, ts, rule.flapping)
            if rule.type not in HEALTH_TYPES:
                self._flap_watch[ev.key] = (ctx, ev)
        target = st.target
        if st.flapping and target < st.tier:
            if not was_flapping:  # mark it on the map once; hold it at its highest tier
                reason = f"flapping: held at {TIER_NAMES[st.tier]}"
                out.append(self._message(ctx, ev, st.tier, ts, historical=historical,
                                         notify=False, reason=reason))  # fmt: skip
            return
        if target == st.tier:
            if was_flapping and not st.flapping:
                out.append(self._unheld(ctx, ev, ts, historical))
            return
        if st.tier == 0:
            st.alert_id, st.opened_ms = stable_id("a", ctx.device.device_id, rule.name, ts), ts
        notify = rule.notify and not historical and not st.flapping
        notify = notify and not self._muted(ctx.device, rule.name, ts)
        from_tier = st.tier
        st.tier = target
        incident_id, incident_notify = self._incident(ctx, ev, ts)
        notify = notify and incident_notify
        msg = self._message(
            ctx,
            ev,
            from_tier,
            ts,
            historical=historical,
            notify=notify,
            reason=ev.reason,
            incident_id=incident_id,
        )
        if notify:
            st.last_notify_ms = ts
        if target == 0:
            st.alert_id, st.last_notify_ms = "", UNSET
            self._active.pop(ev.key, None)
        else:
            self._active[ev.key] = (ctx, ev)
        out.append(msg)

    def _release(
        self, ctx: _Device, ev: Evaluator, ts: int, historical: bool, out: list[AlertTransition]
    ) -> None:
        """A flapping alert whose window has calmed is released: one transition says so."""
        st = ev.state
        refresh_flapping(st, ts, ev.rule.rule.flapping)
        if st.flapping:
            return
        self._dirty.add(ctx)
        if st.target != st.tier:
            self._transition(ctx, ev, ts, historical, out, change=False)
        else:
            out.append(self._unheld(ctx, ev, ts, historical))

    def _unheld(self, ctx: _Device, ev: Evaluator, ts: int, historical: bool) -> AlertTransition:
        """Flapping ended with the alert's real tier the one it was held at: a transition from
        the tier to itself, ``flapping: false``, notified as a change of tier would be."""
        st, rule = ev.state, ev.rule
        notify = rule.rule.notify and not historical
        notify = notify and not self._muted(ctx.device, rule.name, ts)
        if notify:
            st.last_notify_ms = ts
        reason = f"flapping ended: {TIER_NAMES[st.tier]} stands"
        return self._message(ctx, ev, st.tier, ts, historical=historical, notify=notify,
                             reason=reason)  # fmt: skip

    def _message(
        self, ctx: _Device, ev: Evaluator, from_tier: int, ts: int, *, historical: bool = False,
        notify: bool, reason: str, incident_id: str | None = None,
    ) -> AlertTransition:  # fmt: skip
        st, rule, device = ev.state, ev.rule, ctx.device
        prediction = ev.raised_with if st.tier > from_tier else None
        return AlertTransition(
            v=CONTRACT_VERSION,
            transition_id=stable_id("t", st.alert_id, ts, from_tier, st.tier, reason == "reminder"),
            alert_id=st.alert_id, device_id=device.device_id, district=device.district,
            kind=device.kind.value, rule=rule.name, category=rule.rule.category,
            tier_from=TIER_NAMES[from_tier], tier_to=TIER_NAMES[st.tier], value=st.value,
            prediction=prediction, reason=reason[:512], ts=ts, flapping=st.flapping,
            incident_id=incident_id, historical=historical, notify=notify,
        )  # fmt: skip

    def _muted(self, device: Device, rule: str, ts: int) -> bool:
        t = ts / 1000.0
        return any(s.mutes(device.device_id, device.district, rule, t) for s in self.silences)

    def _incident(self, ctx: _Device, ev: Evaluator, ts: int) -> tuple[str | None, bool]:
        node = ctx.rt.node
        category = ev.rule.rule.category
        if self.incidents is None or node is None or category not in GROUPED_CATEGORIES:
            return None, True
        fills = self.world.node_values
        return self.incidents.update(
            node, ev.key, level=ev.state.tier, category=category, ts=ts, fills=fills
        )

    def incidents_changed(self) -> list[Incident]:
        """Incidents opened, changed or closed since the last call (for the service to publish)."""
        if self.incidents is None:
            return []
        return [
            Incident(
                v=CONTRACT_VERSION,
                id=i.id,
                district=i.district,
                root_unit=i.root_unit,
                root_device_id=i.root_device_id,
                units=tuple(i.units),
                device_ids=tuple(
                    sorted(
                        {e[2] for u in i.units for e in self.incidents.levels.get(u, {}).values()}
                    )
                ),
                tier=TIER_NAMES[i.tier],
                opened_ts=i.opened_ms,
                updated_ts=i.updated_ms,
                state="open" if i.state == "open" else "closed",
                category="overflow" if i.category == "overflow" else "overload",
            )
            for i in self.incidents.drain_changed()
        ]

    # -- views ----------------------------------------------------------------------------------

    @property
    def watermark_s(self) -> float | None:
        """The latest event time seen (readings or ticks), or ``None``."""
        return None if self._watermark_ms == UNSET else self._watermark_ms / 1000.0

    def active(self) -> dict[tuple[str, str], str]:
        """The tier of every active alert, by (device id, rule)."""
        out: dict[tuple[str, str], str] = {}
        for key, st in self._states.items():
            if st.tier:
                device_id, rule = key.split("\x1f", 1)
                out[device_id, rule] = TIER_NAMES[st.tier]
        return out

    def refresh_flapping(self, now_s: float, historical: bool = False) -> list[AlertTransition]:
        """Let every flapping window slide to ``now_s``; the releases of alerts that stop
        flapping (one transition each, ``flapping: false``)."""
        now = int(now_s * 1000)
        out: list[AlertTransition] = []
        for key, (ctx, ev) in list(self._flap_watch.items()):
            st = ev.state
            before = (len(st.changes), st.flapping)
            if st.flapping:
                self._release(ctx, ev, now, historical, out)
            else:
                refresh_flapping(st, now, ev.rule.rule.flapping)
            if (len(st.changes), st.flapping) != before:
                self._dirty.add(ctx)
            if not st.changes:
                del self._flap_watch[key]
        return out

    def slide_flapping(self, ts_ms: int, historical: bool = False) -> list[AlertTransition]:
        """Slide flapping windows when event time ``ts_ms`` enters a new minute (the service
        calls it before each message); the releases. The next minute is part of the state.

        In event time, not wall time, so a live run evaluates exactly as a replay of the same
        readings; wall time would unflag a flapping alert in the middle of a backlog.
        """
        nxt = self._flap_slide_ms
        if nxt != UNSET and ts_ms < nxt:
            return _NONE
        minute = ts_ms // FLAP_STEP_MS * FLAP_STEP_MS
        self._flap_slide_ms = minute + FLAP_STEP_MS
        if nxt == UNSET:
            return _NONE
        return self.refresh_flapping(minute / 1000, historical)

    # -- persistence ----------------------------------------------------------------------------

    @property
    def state_bytes(self) -> int:
        """The size of the state as the store holds it (the sum of its parts), for stats."""
        return self._state_bytes

    def delta(self) -> StateDelta:
        """The parts of the state changed since the last call, encoded (msgpack), for
        ``AlertStore.checkpoint``; the first call's delta is ``full`` (it replaces a store's).

        Only devices, nodes and gauges touched since the last call are encoded, so the cost
        follows the traffic, not the fleet. It must run on the engine's own thread, between two
        messages: the parts must hold exactly the effects of the messages the checkpoint
        acknowledges (``_checkpoint``), no later ones.
        """
        self.encode_pending(len(self._dirty))
        parts, self._encoded = self._encoded, {}
        deleted, self._deleted = self._deleted, set()
        meta = MetaPart(SNAPSHOT_VERSION, self._start_ms, self._watermark_ms,
                        self._flap_slide_ms, self._incident_states())  # fmt: skip
        parts[META_KEY] = ENCODER.encode(meta)
        for node in self._dirty_nodes:
            parts[NODE_PREFIX + node] = ENCODER.encode(self.world.node_values.get(node, {}))
        for gauge in self._dirty_gauges:
            parts[RAIN_PREFIX + gauge] = ENCODER.encode(list(self.world.rain.get(gauge, ())))
        self._dirty_nodes, self._dirty_gauges = set(), set()
        full, self._full = self._full, False
        self._count_bytes(parts, deleted, full)
        return StateDelta(parts, frozenset(deleted), full)

    def encode_pending(self, limit: int, keep: int = 0) -> int:
        """Encode up to ``limit`` of the devices changed since the last delta, ahead of it,
        leaving at least ``keep``; how many remain. The service calls it between batches of
        messages, so that the next ``delta()`` (which stops evaluation) has at most ``keep``
        devices left to encode; a device changed again is encoded again."""
        dirty, encoded, deleted = self._dirty, self._encoded, self._deleted
        for _ in range(min(limit, len(dirty) - keep)):
            ctx = dirty.pop()
            key = DEVICE_PREFIX + ctx.device.device_id
            part = self._device_part(ctx)
            if part is None:
                encoded.pop(key, None)
                deleted.add(key)
            else:
                encoded[key] = ENCODER.encode(part)
                deleted.discard(key)
        return len(dirty)

    def _device_part(self, ctx: _Device) -> DevicePart | None:
        # An idle evaluator at tier none with no flapping changes has nothing to carry (the
        # same as ``_quiet``, which costs several times more; it runs for every state of
        # every device a checkpoint writes). The others are checked in full.
        states = {}
        for name, ev in ctx.persist:
            st = ev.state
            if st.tier == 0 and not st.changes and (ev.idle or _quiet(st)):
                continue  # nothing to carry over (_quiet's first two tests, inlined)
            states[name] = st
        history = {m: list(h) for m, h in ctx.rt.history.items() if h}
        status = self._status.get(ctx.device.device_id)
        if not states and not history and status is None and ctx.last_seen == UNSET:
            return None  # nothing to carry over: the device restores fresh
        return DevicePart(states, ctx.last_seen, ctx.last_ts, history, status)

    def _count_bytes(self, parts: Mapping[str, bytes], deleted: set[str], full: bool) -> None:
        sizes = self._part_bytes
        if full:
            sizes.clear()
            self._state_bytes = 0
        for key in deleted:
            self._state_bytes -= sizes.pop(key, 0)
        for key, blob in parts.items():
            self._state_bytes += len(blob) - sizes.get(key, 0)
            sizes[key] = len(blob)

    def _incident_states(self) -> list[IncidentState]:
        return list(self.incidents.incidents.values()) if self.incidents else []

    def snapshot(self) -> bytes:
        """The whole state as bytes (msgpack), at once (benchmarks, tests, ``restore``)."""
        ctxs = self._devices.values()
        snap = Snapshot(
            version=SNAPSHOT_VERSION, start_ms=self._start_ms, watermark_ms=self._watermark_ms,
            states={k: st for k, st in self._states.items() if not _quiet(st)},
            last_seen={c.device.device_id: c.last_seen for c in ctxs if c.last_seen != UNSET},
            last_ts={c.device.device_id: c.last_ts for c in ctxs if c.last_ts != UNSET},
            history={c.device.device_id: {m: list(h) for m, h in c.rt.history.items() if h}
                     for c in ctxs if any(c.rt.history.values())},
            rain={g: list(h) for g, h in self.world.rain.items()},
            node_values=self.world.node_values, incidents=self._incident_states(),
            status=self._status, flap_slide_ms=self._flap_slide_ms,
        )  # fmt: skip
        return ENCODER.encode(snap)

    @classmethod
    def restore(
        cls, blob: bytes, rules: RuleSet, devices: Iterable[Device], network: Network | None = None,
        silences: Sequence[Silence] | None = None,
    ) -> Self:  # fmt: skip
        """An engine that carries on from ``snapshot()``'s bytes (rules may have changed: state
        of rules that no longer exist is dropped, new rules start fresh). Its first
        ``delta()`` holds the whole state."""
        snap = DECODER.decode(blob)
        if snap.version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snap.version}, want {SNAPSHOT_VERSION}")
        engine = cls(rules, devices, network, silences)
        engine._load(snap)
        engine._dirty = set(engine._devices.values())
        engine._dirty_nodes = set(engine.world.node_values)
        engine._dirty_gauges = set(engine.world.rain)
        return engine

    @classmethod
    def restore_parts(
        cls, parts: Mapping[str, bytes], rules: RuleSet, devices: Iterable[Device],
        network: Network | None = None, silences: Sequence[Silence] | None = None,
    ) -> Self:  # fmt: skip
        """An engine that carries on from the parts a store holds (``AlertStore.load``); its
        next ``delta()`` holds only what changes from now on, and drops the parts of devices
        no longer in the fleet. ``ValueError`` naming a part that cannot be read."""
        engine = cls(rules, devices, network, silences)
        engine._load(assemble(parts))
        engine._full = False
        known = {DEVICE_PREFIX + d for d in engine._devices}
        engine._deleted = {k for k in parts if k.startswith(DEVICE_PREFIX) and k not in known}
        engine._part_bytes = {k: len(v) for k, v in parts.items() if k not in engine._deleted}
        engine._state_bytes = sum(engine._part_bytes.values())
        return engine

    def _load(self, snap: Snapshot) -> None:
        self._start_ms, self._watermark_ms = snap.start_ms, snap.watermark_ms
        self._status, self._flap_slide_ms = dict(snap.status), snap.flap_slide_ms
        for ctx in self._devices.values():
            for ev in (*ctx.evaluators, *ctx.silent, *ctx.offline):
                saved = snap.states.get(ev.key)
                if saved is not None and len(saved.latched) == len(ev.state.latched):
                    _copy_state(saved, ev.state)
            device_id = ctx.device.device_id
            ctx.last_seen = snap.last_seen.get(device_id, UNSET)
            ctx.silent_raised = any(ev.state.target for ev in ctx.silent)
            for ev in (*ctx.evaluators, *ctx.silent, *ctx.offline):
                if ev.state.tier:
                    self._active[ev.key] = (ctx, ev)
            for ev in ctx.evaluators:
                if ev.state.changes:
                    self._flap_watch[ev.key] = (ctx, ev)
            ctx.last_ts = snap.last_ts.get(device_id, UNSET)
            for metric, points in snap.history.get(device_id, {}).items():
                if metric in ctx.rt.history:
                    ctx.rt.history[metric].extend((a, b) for a, b in points)
        self.world.rain = {
            g: deque(((a, b) for a, b in p), maxlen=RAIN_POINTS) for g, p in snap.rain.items()
        }
        self.world.node_values = {
            n: {m: (v[0], v[1]) for m, v in d.items()} for n, d in snap.node_values.items()
        }
        self._reload_incidents(snap)

    def _reload_incidents(self, snap: Snapshot) -> None:
        if self.incidents is None:
            return
        self.incidents.incidents = {i.id: i for i in snap.incidents}
        for ctx in self._devices.values():
            node = ctx.rt.node
            for ev in ctx.evaluators:
                if node and ev.state.tier and ev.rule.rule.category in GROUPED_CATEGORIES:
                    entry = (ev.state.tier, ev.rule.rule.category, ctx.device.device_id)
                    self.incidents.levels.setdefault(node, {})[ev.key] = entry


def _fits(ev: Evaluator) -> bool:
    """Whether ``ev``'s rule fits a trend (``predict`` or ``rate``) or looks at neighbours."""

    def walk(cond: object) -> bool:
        if any(
            getattr(cond, k, None) is not None for k in ("predict", "rate", "downstream", "head")
        ):
            return True
        return any(walk(c) for c in (*getattr(cond, "all", ()), *getattr(cond, "any", ())))

    return any(
        walk(t.raise_) or (t.clear is not None and walk(t.clear)) for t in ev.rule.rule.tiers
    )


def _quiet(st: RuleState) -> bool:
    """A state with nothing to carry over (no tier, nothing counted or timed): left out of the
    checkpoint, restored fresh. Built of C-level list operations: it runs for every state of
    every device a checkpoint writes."""
    return (
        st.tier == 0 and st.target == 0 and not st.changes and not st.aux
        and st.last_notify_ms == UNSET and True not in st.latched and not any(st.counts)
        and st.since.count(UNSET) == len(st.since)
    )  # fmt: skip


def _copy_state(src: RuleState, dst: RuleState) -> None:
    for name in RuleState.__struct_fields__:
        setattr(dst, name, getattr(src, name))


def _conditions(rules: RuleSet) -> Iterator[Any]:
    """Every condition of every tier (raise and clear), nested ones included."""

    def walk(cond: Any) -> Iterator[Any]:
        yield cond
        for sub in (*getattr(cond, "all", ()), *getattr(cond, "any", ())):
            yield from walk(sub)

    for rule in rules:
        for tier in rule.rule.tiers:
            yield from walk(tier.raise_)
            if tier.clear is not None:
                yield from walk(tier.clear)


def _forecast_scenarios(rules: RuleSet) -> set[float]:
    """The ``persist`` of every ``forecast`` condition: one forecast run each."""
    return {c.forecast.persist for c in _conditions(rules) if getattr(c, "forecast", None)}


def _neighbour_metrics(rules: RuleSet) -> set[str]:
    found: set[str] = set()
    for cond in _conditions(rules):
        for side in ("downstream", "upstream"):
            nb = getattr(cond, side, None)
            if nb is not None:
                found.add(nb.metric)
        if getattr(cond, "head", None) is not None:
            found.add("level_m")  # the water surface of the node below
    return found


__all__ = ["HISTORY_POINTS", "Engine"]
