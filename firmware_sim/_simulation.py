"""The fleet simulation: vectorised state per kind, advanced lazily to the time it is asked about.

The first read at a new tick steps the whole fleet (numpy arrays per kind); every other read at
that tick only indexes arrays. Time never goes back: a read earlier than the latest tick returns
the latest tick's readings. The scenario repeats with its period if the simulation runs longer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_sim._common import active, select, windows
from firmware_sim._drain import DrainModel
from firmware_sim._events import (
    MERGE_GAP_S,
    TruthEvent,
    clip_events,
    event_records,
    merge_events,
    write_truth_events,
)
from firmware_sim._faults import Measured, SensorLayer
from firmware_sim._fleet import DEFAULT_NODES_PER_DISTRICT
from firmware_sim._garbage import GarbageModel
from firmware_sim._raingauge import RainGaugeModel
from firmware_sim._scenario import Scenario, Selection
from firmware_sim._toilet import ToiletModel
from firmware_sim._truth import GroundTruthRecord, write_ground_truth
from firmware_sim.errors import FleetError
from telemetry_core.driver import DriverError
from telemetry_core.kinds import DeviceKind, kind_spec
from telemetry_core.registry import Device

FAILED_READ = "sensor bus timeout (simulated dropout)"
COUNTERS = ("footfall_count", "water_l")
"""Metrics reported as "since the last report": differences of running totals, per device."""


@dataclass(frozen=True, slots=True)
class KindArrays:
    """One kind's readings at one tick as arrays: the fast path for writing many devices.

    ``values`` holds counters as "since the last report"; a row with ``failed`` is a failed read
    (``DriverError``), a cell with ``missing`` a metric left out.
    """

    kind: DeviceKind
    device_ids: tuple[str, ...]
    metrics: tuple[str, ...]
    values: np.ndarray  # (n, m)
    missing: np.ndarray  # (n, m) bool
    failed: np.ndarray  # (n,) bool
    clock_skew_s: np.ndarray  # (n,)


class _Kind:
    """One kind's devices, model, sensor layer and latest readings."""

    def __init__(
        self, kind: DeviceKind, devices: list[Device], model: object, sensors: SensorLayer
    ) -> None:
        self.kind = kind
        self.devices = devices
        self.model = model
        self.sensors = sensors
        self.metrics = tuple(kind_spec(kind).metrics)
        self.counter_cols = [self.metrics.index(m) for m in COUNTERS if m in self.metrics]
        self.last_counter = np.zeros((len(devices), len(self.counter_cols)))
        self.measured: Measured | None = None
        self.device_ids = tuple(d.device_id for d in devices)
        self.skew_s = np.zeros(len(devices))


class FleetSimulation:
    """Simulates a fleet under a scenario; deterministic for a given seed and start time."""

    def __init__(
        self,
        devices: Sequence[Device],
        scenario: Scenario,
        seed: int,
        start_s: float,
        *,
        tick_s: float = 60.0,
        nodes_per_district: int = DEFAULT_NODES_PER_DISTRICT,
        cache_dir: Path | None = None,
        swmm_timeout_s: float = 900.0,
    ) -> None:
        if tick_s <= 0 or not math.isfinite(start_s):
            raise FleetError("tick_s must be positive and start_s finite")
        ids = [d.device_id for d in devices]
        if len(set(ids)) != len(ids):
            raise FleetError("device ids in a fleet must be unique")
        self.scenario, self.seed, self.start_s, self.tick_s = scenario, seed, start_s, tick_s
        self._cache_dir, self._timeout_s = cache_dir, swmm_timeout_s
        self._devices = list(devices)
        self._tick = -1
        self._kinds = self._build(nodes_per_district)
        self._where = {
            d.device_id: (k, row) for k in self._kinds.values() for row, d in enumerate(k.devices)
        }
        self._outages = [
            (
                o,
                {
                    d.device_id
                    for d, m in zip(self._devices, self._outage_mask(o, n), strict=True)
                    if m
                },
            )
            for n, o in enumerate(scenario.outages)
        ]
        # Per device, the outage entries that cut it: a link probe per sample stays O(entries).
        self._cuts: dict[str, list[Selection]] = {}
        for sel, cut_ids in self._outages:
            for device_id in cut_ids:
                self._cuts.setdefault(device_id, []).append(sel)

    def _outage_mask(self, sel: Selection, n: int) -> np.ndarray:
        masks = [
            select(sel, [d for d in self._devices if d.kind is k], k, f"outage/{n}")
            for k in DeviceKind
        ]
        by_kind = {k: iter(m) for k, m in zip(DeviceKind, masks, strict=True)}
        return np.array([next(by_kind[d.kind]) for d in self._devices], dtype=bool)

    def _build(self, nodes: int) -> dict[DeviceKind, _Kind]:
        groups = {k: [d for d in self._devices if d.kind is k] for k in DeviceKind}
        sc, seed = self.scenario, self.seed
        kinds: dict[DeviceKind, _Kind] = {}
        for kind, devs in groups.items():
            if not devs:
                continue
            model: object
            if kind is DeviceKind.DRAIN:
                model = DrainModel(devs, sc, seed, self.start_s, nodes)
            elif kind is DeviceKind.TOILET:
                model = ToiletModel(devs, sc, seed)
            elif kind is DeviceKind.RAIN:
                model = RainGaugeModel(devs, sc, seed, self.start_s, self.tick_s)
            else:
                model = GarbageModel(devs, sc, seed, self.start_s)
            kinds[kind] = _Kind(kind, devs, model, SensorLayer(kind, devs, sc, seed))
        return kinds

    @property
    def devices(self) -> list[Device]:
        """The simulated devices, in the order given."""
        return list(self._devices)

    def _true_values(self, k: _Kind, at_s: float, rel_s: float) -> np.ndarray:
        if isinstance(k.model, DrainModel):
            k.model.hydraulics(self._cache_dir, self._timeout_s)
            return k.model.values(rel_s, k.metrics)
        if isinstance(k.model, ToiletModel):
            return k.model.values(at_s, k.metrics)
        if isinstance(k.model, RainGaugeModel):
            return k.model.values(rel_s, k.metrics)
        assert isinstance(k.model, GarbageModel)  # noqa: S101 - _build makes only these four
        return k.model.values(k.metrics)

    def advance_to(self, at_s: float) -> int:
        """Step the fleet to the tick holding ``at_s``; returns that tick (never goes back)."""
        target = max(0, math.floor((at_s - self.start_s) / self.tick_s + 1e-9))
        if target <= self._tick:
            return self._tick
        while self._tick < target:
            self._tick += 1
            tick_at = self.start_s + self._tick * self.tick_s
            rel = self._tick * self.tick_s
            for k in self._kinds.values():
                if isinstance(k.model, ToiletModel | GarbageModel) and self._tick > 0:
                    k.model.step(tick_at, rel, self.tick_s)
                if isinstance(k.model, ToiletModel):
                    k.model.record(tick_at)
                elif isinstance(k.model, GarbageModel):
                    k.model.record(tick_at, rel)
                if k.sensors.needs_observe:  # only stuck sensors need every tick's value
                    k.sensors.observe(self._true_values(k, tick_at, rel), rel)
        for k in self._kinds.values():
            rel = self._tick * self.tick_s
            true = self._true_values(k, self.start_s + rel, rel)
            k.measured = k.sensors.measure(true, rel, self._tick)
            k.skew_s = k.sensors.clock_skew_s(rel)
        return self._tick

    def now_s(self) -> float:
        """Simulated time of the latest tick (the start before any read)."""
        return self.start_s + max(self._tick, 0) * self.tick_s

    def read_device(self, device_id: str, at_s: float) -> dict[str, float]:
        """One device's reading at ``at_s``; ``DriverError`` for a failed read."""
        self.advance_to(at_s)
        k, row = self._where[device_id]
        return self._reading(k, row)

    def _reading(self, k: _Kind, row: int) -> dict[str, float]:
        m = k.measured
        assert m is not None  # noqa: S101 - advance_to always measures
        if m.failed[row]:
            raise DriverError(k.devices[row].device_id, FAILED_READ)
        values = m.values[row]
        reading = {
            name: float(values[c]) for c, name in enumerate(k.metrics) if not m.missing[row, c]
        }
        for j, c in enumerate(k.counter_cols):
            total = float(values[c])
            reading[k.metrics[c]] = float(
                np.round(max(0.0, total - float(k.last_counter[row, j])), 3)
            )
            k.last_counter[row, j] = total
        return reading

    def read_all(self, at_s: float) -> dict[str, Mapping[str, float] | DriverError]:
        """Every device's reading at ``at_s`` (the vectorised path; one step for the fleet)."""
        out: dict[str, Mapping[str, float] | DriverError] = {}
        for arrays in self.read_arrays(at_s):
            out.update(_as_readings(arrays))
        return out

    def read_arrays(self, at_s: float) -> list[KindArrays]:
        """Every device's reading at ``at_s`` as arrays per kind (counters since the last read)."""
        self.advance_to(at_s)
        return [self._kind_arrays(k) for k in self._kinds.values()]

    def _kind_arrays(self, k: _Kind) -> KindArrays:
        m = k.measured
        assert m is not None  # noqa: S101 - advance_to always measures
        values = m.values
        if k.counter_cols:
            values = values.copy()
            totals = values[:, k.counter_cols]
            # Rounded again: a difference of two decimals is not always the shortest decimal.
            values[:, k.counter_cols] = np.round(np.maximum(totals - k.last_counter, 0.0), 3)
            k.last_counter = totals
        return KindArrays(k.kind, k.device_ids, k.metrics, values, m.missing, m.failed, k.skew_s)

    def clock_skew_s(self, device_id: str) -> float:
        """How far the device's clock runs ahead of true time now (seconds; negative = behind)."""
        k, row = self._where[device_id]
        return float(k.skew_s[row])

    def outages(self, at_s: float) -> set[str]:
        """Devices whose network link is cut at ``at_s`` (the district outage scenario)."""
        cut: set[str] = set()
        for sel, ids in self._outages:
            if active(sel, at_s - self.start_s, self.scenario.duration_s):
                cut |= ids
        return cut

    def link_up(self, device_id: str, at_s: float) -> bool:
        """Whether ``device_id``'s network link works at ``at_s`` (no outage holds it)."""
        rel_s = at_s - self.start_s
        period_s = self.scenario.duration_s
        return not any(active(sel, rel_s, period_s) for sel in self._cuts.get(device_id, ()))

    def drivers(self) -> list[SimulatedDriver]:
        """One :class:`SensorDriver` per device, sharing this simulation."""
        return [SimulatedDriver(self, d) for d in self._devices]

    def _spans(self, until_s: float) -> list[TruthEvent]:
        """Unmerged event spans of the scenario, the toilets and the bins (drains apart)."""
        from firmware_sim._groundtruth import scenario_events

        spans = scenario_events(self, until_s)
        for k in self._kinds.values():
            if isinstance(k.model, ToiletModel | GarbageModel):
                spans += k.model.truth_events(until_s)
        return clip_events(spans, until_s)

    def ground_truth(self, until_s: float) -> list[GroundTruthRecord]:
        """Raw per-device records of what happened up to ``until_s`` (advancing there if need be).

        Each record is one contiguous run of minutes in a state, before any merging.
        """
        self.advance_to(until_s)
        records = event_records(self._spans(until_s))
        for k in self._kinds.values():
            if isinstance(k.model, DrainModel):
                records += k.model.ground_truth(until_s)
        # State-tracked spans may run past ``until_s`` if the simulation is already further on.
        records = [
            r if r.end_s <= until_s else dataclasses.replace(r, end_s=until_s)
            for r in records
            if r.start_s < until_s
        ]
        return sorted(records, key=lambda r: (r.start_s, r.device_id, r.what))

    def truth_events(self, until_s: float, gap_s: float = MERGE_GAP_S) -> list[TruthEvent]:
        """Labelled events up to ``until_s``, per unit, spans under ``gap_s`` apart merged."""
        self.advance_to(until_s)
        spans = self._spans(until_s)
        for k in self._kinds.values():
            if isinstance(k.model, DrainModel):
                k.model.hydraulics(self._cache_dir, self._timeout_s)
                spans += clip_events(k.model.truth_events(until_s), until_s)
        return merge_events(spans, gap_s)

    def write_ground_truth(self, path: Path, until_s: float | None = None) -> int:
        """Write the raw ground truth up to ``until_s`` (default: the latest tick) to ``path``."""
        return write_ground_truth(self.ground_truth(until_s or self.now_s()), path)

    def write_truth_events(self, path: Path, until_s: float | None = None) -> int:
        """Write the merged events up to ``until_s`` (default: the latest tick) as JSON lines."""
        return write_truth_events(self.truth_events(until_s or self.now_s()), path)

    def kind_state(self, kind: DeviceKind) -> tuple[list[Device], SensorLayer, object]:
        """Devices, sensor layer and model of one kind (for ground truth and tests)."""
        k = self._kinds.get(kind)
        if k is None:
            return [], SensorLayer(kind, [], self.scenario, self.seed), None
        return k.devices, k.sensors, k.model

    def outage_spans(self, until_s: float) -> list[tuple[str, float, float]]:
        """(device id, start, end) of every outage before ``until_s``."""
        return [
            (device_id, a, b)
            for sel, ids in self._outages
            for a, b in windows(sel, self.start_s, self.scenario.duration_s, until_s)
            for device_id in sorted(ids)
        ]


def _as_readings(a: KindArrays) -> dict[str, Mapping[str, float] | DriverError]:
    # Whole rows through tolist() and zip(): an order of magnitude faster than per-cell floats.
    rows = a.values.tolist()
    partial: list[bool] = np.asarray(a.missing.any(axis=1)).tolist()
    failed: list[bool] = a.failed.tolist()
    out: dict[str, Mapping[str, float] | DriverError] = {}
    for row, device_id in enumerate(a.device_ids):
        if failed[row]:
            out[device_id] = DriverError(device_id, FAILED_READ)
        elif partial[row]:
            keep: list[bool] = (~a.missing[row]).tolist()
            out[device_id] = {
                n: v for n, v, ok in zip(a.metrics, rows[row], keep, strict=True) if ok
            }
        else:
            out[device_id] = dict(zip(a.metrics, rows[row], strict=True))
    return out


class SimulatedDriver:
    """A :class:`telemetry_core.driver.SensorDriver` for one simulated device.

    It is also a :class:`telemetry_core.driver.LinkProbe`: the scenario's network outages cut
    its link, so an edge agent hosting it holds its messages back as a real device would.
    """

    def __init__(self, sim: FleetSimulation, device: Device) -> None:
        self._sim = sim
        self.device = device

    @property
    def device_id(self) -> str:
        """The device this driver reads."""
        return self.device.device_id

    @property
    def kind(self) -> DeviceKind:
        """The device's kind."""
        return self.device.kind

    @property
    def clock_skew_s(self) -> float:
        """How far this device's clock is off now; the edge side adds it when stamping."""
        return self._sim.clock_skew_s(self.device.device_id)

    def read(self, at_s: float) -> Mapping[str, float]:
        """Read every sensor at ``at_s``; ``DriverError`` when the device's read fails."""
        return self._sim.read_device(self.device.device_id, at_s)

    def link_up(self, at_s: float) -> bool:
        """Whether this device's network link works at ``at_s`` (scenario outages cut it)."""
        return self._sim.link_up(self.device.device_id, at_s)
