"""Drain nodes: readings interpolated from the SWMM series of the node each device sits on.

Many devices may share one SWMM node (a fleet of 30,000 drain sensors maps onto a few hundred
modelled manholes); they then read the same hydraulics with their own sensor noise and faults.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from firmware_sim._common import local_hour
from firmware_sim._events import NodeSeries, TruthEvent, event_records, node_events
from firmware_sim._levelsensor import DROWNED_M, LevelSensors, submerged_events
from firmware_sim._network import Network, generate_network
from firmware_sim._rainfield import RainField, rain_series

__all__ = ["DrainModel", "network_size", "node_of", "rain_series"]
from firmware_sim._scenario import Scenario
from firmware_sim._swmm import (
    SEWAGE_PATTERN,
    HydraulicResult,
    build_inp,
    prefixed,
    run_swmm,
)  # fmt: skip
from firmware_sim._truth import GroundTruthRecord, intervals
from firmware_sim.errors import FleetError
from telemetry_core.registry import Device

SEWAGE_COD_MGL = 380.0
SEWAGE_NH3N_MGL = 32.0
RUNOFF_COD_MGL = 35.0
RUNOFF_NH3N_MGL = 1.2
FLOOD_M3S = 1e-4
"""Below this, SWMM's flooding loss is numerical noise, not a manhole overflowing."""


def node_of(device: Device, network: Network) -> int:
    """Index of the junction a drain device sits on: its ``swmm_node`` attribute, else a hash."""
    wanted = device.attributes.get("swmm_node")
    if wanted is None:
        return zlib.crc32(device.device_id.encode()) % len(network.junctions)
    # Junction names are J000, J001, ... in order, so the number is the index.
    index = int(str(wanted)[1:]) if str(wanted)[1:].isdigit() else -1
    if not 0 <= index < len(network.junctions):
        raise FleetError(
            f"{device.device_id}: swmm_node {wanted!r} is not in {device.district}'s "
            f"{len(network.junctions)}-junction network (made with another network size?)"
        )
    return index


def network_size(district_name: str, devices: Sequence[Device], default: int) -> int:
    """The network size the fleet was made with (``network_nodes``), else ``default``."""
    sizes = {
        d.attributes.get("network_nodes", default) for d in devices if d.district == district_name
    }
    if len(sizes) > 1:
        raise FleetError(
            f"{district_name}: drain devices disagree on network_nodes {sorted(map(str, sizes))}"
        )
    size = sizes.pop()
    if not isinstance(size, float | int) or size < 3 or size != int(size):
        raise FleetError(f"{district_name}: network_nodes {size!r} must be a whole number >= 3")
    return int(size)


class DrainModel:
    """Vectorised drain-node state for every drain device of a fleet."""

    def __init__(
        self,
        devices: Sequence[Device],
        scenario: Scenario,
        seed: int,
        start_s: float,
        nodes_per_district: int,
    ) -> None:
        self.devices = devices
        self._scenario = scenario
        self._seed = seed
        self._start_s = start_s
        districts = sorted({d.district for d in devices})
        self.networks = [
            generate_network(name, network_size(name, devices, nodes_per_district))
            for name in districts
        ]
        self._result: HydraulicResult | None = None
        rng = np.random.default_rng([seed, 11])
        n = len(devices)
        self._quality = rng.uniform(0.8, 1.2, n)
        self._battery0 = rng.uniform(3.45, 3.65, n)
        self._rssi0 = rng.normal(-88.0, 6.0, n)
        self.level_sensors = LevelSensors(devices, seed)
        self._map_devices()

    def _map_devices(self) -> None:
        by_district = {net.district: net for net in self.networks}
        outgoing = {net.district: net.outgoing() for net in self.networks}
        dwf_of = {net.district: net.upstream_dwf_m3s() for net in self.networks}
        node_keys, link_keys, diameters, dwf, depth_max = [], [], [], [], []
        for d in self.devices:
            net = by_district[d.district]
            j = net.junctions[node_of(d, net)]
            conduit = outgoing[d.district][j.name]
            node_keys.append(prefixed(net, j.name))
            link_keys.append(prefixed(net, conduit.name))
            diameters.append(conduit.diameter_m)
            dwf.append(dwf_of[d.district][j.name])
            depth_max.append(j.max_depth_m)
        self._node_keys, self._link_keys = node_keys, link_keys
        self._diameter = np.array(diameters)
        self._dwf = np.array(dwf)
        self._depth_max = np.array(depth_max)

    def hydraulics(self, cache_dir: Path | None, timeout_s: float) -> HydraulicResult:
        """Run (once) and return the SWMM series for the fleet's districts."""
        if self._result is None:
            inp = build_inp(
                self.networks,
                RainField(self._scenario, self._seed),
                self._start_s,
                self._scenario.duration_s,
                self._scenario.storm_surge,
            )
            result = run_swmm(inp, self._start_s, cache_dir, timeout_s)
            nodes = {n: i for i, n in enumerate(result.node_names)}
            links = {n: i for i, n in enumerate(result.link_names)}
            self._node_idx = np.array([nodes[k] for k in self._node_keys], dtype=np.intp)
            self._link_idx = np.array([links[k] for k in self._link_keys], dtype=np.intp)
            self._result = result
        return self._result

    def values(self, rel_s: float, metrics: Sequence[str]) -> np.ndarray:
        """True values at ``rel_s`` seconds from the start, columns in ``metrics`` order."""
        res = self._result
        if res is None:
            raise RuntimeError("hydraulics() must run before values()")
        t = rel_s % self._scenario.duration_s
        pos = np.interp(t, res.times_s, np.arange(res.times_s.size))
        lo = int(pos)
        hi = min(lo + 1, res.times_s.size - 1)
        w = pos - lo

        def at(series: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.asarray(series[lo, idx] * (1 - w) + series[hi, idx] * w)

        level = at(res.depth_m, self._node_idx)
        flow = at(res.flow_m3s, self._link_idx)
        pattern = SEWAGE_PATTERN[int(local_hour(self._start_s + rel_s)) % 24]
        sewage = np.clip(self._dwf * pattern / np.maximum(np.abs(flow), 1e-6), 0.0, 1.0)
        days = rel_s / 86_400.0
        velocity = at(res.velocity_ms, self._link_idx)
        measured = self.level_sensors.measure(level, velocity, self._depth_max, rel_s)
        columns = {
            "level_m": measured,
            "fill_ratio": measured / self._diameter,
            "flow_m3s": flow,
            "velocity_ms": velocity,
            "cod_mgl": self._quality * (SEWAGE_COD_MGL * sewage + RUNOFF_COD_MGL * (1 - sewage)),
            "nh3n_mgl": self._quality * (SEWAGE_NH3N_MGL * sewage + RUNOFF_NH3N_MGL * (1 - sewage)),
            "battery_v": self._battery0 - 0.004 * days,
            # A flooded manhole drowns the antenna: signal falls as water nears the cover.
            "rssi_dbm": self._rssi0 - 25.0 * np.clip(level / self._depth_max, 0.0, 1.0),
        }
        return np.column_stack([columns[m] for m in metrics])

    def ground_truth(self, until_s: float) -> list[GroundTruthRecord]:
        """Overflow and surcharge spans of each device's node, repeated per scenario period."""
        # From the spans per modelled node, not per device: 40,000 sensors share 360 nodes.
        return event_records(self.truth_events(until_s))

    def _repeated(
        self, spans: list[tuple[float, float]], until_s: float
    ) -> list[tuple[float, float]]:
        """Spans of one scenario period (relative seconds), repeated each period before until_s."""
        out, period = [], self._scenario.duration_s
        for a, b in spans:
            k = 0
            while (begin := self._start_s + k * period + a) < until_s:
                out.append((begin, min(self._start_s + k * period + min(b, period), until_s)))
                k += 1
        return out

    def _node_groups(self) -> tuple[list[int], list[int], dict[int, list[int]]]:
        """The modelled nodes devices sit on, a first device of each, and each one's devices."""
        cols: dict[int, list[int]] = {}
        for i, node in enumerate(self._node_idx.tolist()):
            cols.setdefault(node, []).append(i)
        nodes = sorted(cols)
        return nodes, [cols[n][0] for n in nodes], cols

    def sensor_events(self, until_s: float) -> list[TruthEvent]:
        """Level-sensor faults: ``fault:fouling`` per device, ``fault:submerged`` while drowned."""
        events = self.level_sensors.fouling_events(self._start_s, until_s)
        res = self._result
        if res is None:
            return events
        # Per node, then per device: a (T, devices) array of a city fleet is hundreds of MB.
        nodes, first, _ = self._node_groups()
        drowned = res.depth_m[:, nodes] >= self._depth_max[first] - DROWNED_M
        per_node = dict(zip(nodes, intervals(drowned, res.times_s), strict=True))
        spans = [self._repeated(per_node[n], until_s) for n in self._node_idx.tolist()]
        return events + submerged_events(self.devices, spans)

    def truth_events(self, until_s: float) -> list[TruthEvent]:
        """Overflow and surcharge spans per modelled manhole (unit ``jj-J012``), unmerged."""
        res = self._result
        if res is None:
            return []
        nodes, first, cols = self._node_groups()
        series = NodeSeries(
            times_s=res.times_s,
            flooding_m3s=res.flooding_m3s[:, nodes],
            fill=res.depth_m[:, nodes] / self._diameter[first],
            units=tuple(self._node_keys[i].replace("_", "-", 1) for i in first),
            device_ids=tuple(tuple(self.devices[i].device_id for i in cols[n]) for n in nodes),
            districts=tuple(self.devices[i].district for i in first),
        )
        return node_events(
            series, flood_m3s=FLOOD_M3S, start_s=self._start_s,
            period_s=self._scenario.duration_s, until_s=until_s,
        ) + self.sensor_events(until_s)  # fmt: skip
