"""Ground truth known from the scenario itself: sensor faults, device incidents, outages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from firmware_sim._common import select, windows
from firmware_sim._scenario import INCIDENT_KIND
from firmware_sim._truth import GroundTruthRecord
from telemetry_core.kinds import DeviceKind

if TYPE_CHECKING:
    from firmware_sim._simulation import FleetSimulation


def _fault_records(sim: FleetSimulation, until_s: float) -> list[GroundTruthRecord]:
    records = []
    period = sim.scenario.duration_s
    for kind in DeviceKind:
        devices, sensors, _ = sim.kind_state(kind)
        for f in sensors.faults:
            metric = sensors.metrics[f.column]
            detail = f"metric={metric} magnitude={f.spec.magnitude:g}"
            if f.spec.type in ("spike", "dropout"):
                detail += f" probability={f.spec.probability:g}"
            if f.spec.type == "clock_skew":
                detail = f"skew_s={60.0 * f.spec.magnitude:g}"
            for a, b in windows(f.spec, sim.start_s, period, until_s):
                records += [
                    GroundTruthRecord(
                        devices[i].device_id, kind, a, b, f"fault:{f.spec.type}", detail
                    )
                    for i in np.flatnonzero(f.mask)
                ]
    return records


def _incident_records(sim: FleetSimulation, until_s: float) -> list[GroundTruthRecord]:
    records = []
    devices, _, _ = sim.kind_state(DeviceKind.TOILET)
    for k, inc in enumerate(sim.scenario.incidents):
        if INCIDENT_KIND[inc.type] is not DeviceKind.TOILET or not devices:
            continue
        mask = select(inc, devices, DeviceKind.TOILET, f"incident/{k}/{inc.type}")
        for a, b in windows(inc, sim.start_s, sim.scenario.duration_s, until_s):
            records += [
                GroundTruthRecord(
                    devices[i].device_id, DeviceKind.TOILET, a, b, f"fault:{inc.type}"
                )
                for i in np.flatnonzero(mask)
            ]
    return records


def scenario_records(sim: FleetSimulation, until_s: float) -> list[GroundTruthRecord]:
    """Faults, toilet incidents and outages up to ``until_s``."""
    kinds = {d.device_id: d.kind for d in sim.devices}
    outages = [
        GroundTruthRecord(device_id, kinds[device_id], a, b, "outage")
        for device_id, a, b in sim.outage_spans(until_s)
    ]
    return _fault_records(sim, until_s) + _incident_records(sim, until_s) + outages
