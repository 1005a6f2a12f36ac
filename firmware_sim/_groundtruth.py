"""Ground truth known from the scenario itself: sensor faults, toilet incidents, device outages.

A whole-device dropout (every read of the device fails) and a cut network link are both a
``device_outage`` of that device (detail ``cause=read_failure`` or ``cause=network``); a dropout
of one metric is a sensor fault, ``fault:dropout``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from firmware_sim._common import select, windows
from firmware_sim._events import TruthEvent
from firmware_sim._scenario import INCIDENT_KIND, SensorFault
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device

if TYPE_CHECKING:
    from firmware_sim._simulation import FleetSimulation


def _device_event(
    device: Device, label: str, span: tuple[float, float], detail: str = ""
) -> TruthEvent:
    return TruthEvent(
        label=label, unit=device.device_id, device_ids=(device.device_id,),
        district=device.district, kind=device.kind.value, onset_s=span[0], end_s=span[1],
        detail=detail,
    )  # fmt: skip


def _fault_label(spec: SensorFault, metric: str) -> tuple[str, str]:
    if spec.type == "dropout" and spec.whole_device:
        return "device_outage", f"cause=read_failure probability={spec.probability:g}"
    if spec.type == "clock_skew":
        return "fault:clock_skew", f"skew_s={60.0 * spec.magnitude:g}"
    detail = f"metric={metric} magnitude={spec.magnitude:g}"
    if spec.type in ("spike", "dropout"):
        detail += f" probability={spec.probability:g}"
    return f"fault:{spec.type}", detail


def _fault_events(sim: FleetSimulation, until_s: float) -> list[TruthEvent]:
    events = []
    period = sim.scenario.duration_s
    for kind in DeviceKind:
        devices, sensors, _ = sim.kind_state(kind)
        for f in sensors.faults:
            label, detail = _fault_label(f.spec, sensors.metrics[f.column])
            for span in windows(f.spec, sim.start_s, period, until_s):
                events += [
                    _device_event(devices[i], label, span, detail) for i in np.flatnonzero(f.mask)
                ]
    return events


def _incident_events(sim: FleetSimulation, until_s: float) -> list[TruthEvent]:
    events = []
    devices, _, _ = sim.kind_state(DeviceKind.TOILET)
    for k, inc in enumerate(sim.scenario.incidents):
        if INCIDENT_KIND[inc.type] is not DeviceKind.TOILET or not devices:
            continue
        mask = select(inc, devices, DeviceKind.TOILET, f"incident/{k}/{inc.type}")
        for span in windows(inc, sim.start_s, sim.scenario.duration_s, until_s):
            events += [
                _device_event(devices[i], f"fault:{inc.type}", span) for i in np.flatnonzero(mask)
            ]
    return events


def _outage_events(
    devices: Sequence[Device], spans: list[tuple[str, float, float]]
) -> list[TruthEvent]:
    by_id = {d.device_id: d for d in devices}
    return [
        _device_event(by_id[device_id], "device_outage", (a, b), "cause=network")
        for device_id, a, b in spans
    ]


def scenario_events(sim: FleetSimulation, until_s: float) -> list[TruthEvent]:
    """Faults, toilet incidents and outages up to ``until_s``, one span per window (unmerged)."""
    outages = _outage_events(sim.devices, sim.outage_spans(until_s))
    return _fault_events(sim, until_s) + _incident_events(sim, until_s) + outages
