"""Grouping by topology: alerts on hydraulically connected nodes form one incident.

Two alerting nodes are connected when one lies downstream of the other with at most ``MAX_GAP``
quiet nodes between them (backwater from a surcharged trunk reaches up its branches). Each
connected set of alerting nodes is one incident. Its **root cause** is the most downstream
surcharged node of the set (fewest hops to the outfall, fill ratio above 1; ties by node id);
when none is surcharged, the most downstream alerting node. An incident keeps its id while its
set changes (the new set inherits the id of the open incident it shares most nodes with) and
closes when its last alert clears.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from alerting._hygiene import stable_id
from alerting._network import Network
from alerting._state import IncidentState

MAX_GAP: Final = 2
SURCHARGE_FILL: Final = 1.0
GROUPED_CATEGORIES: Final = frozenset({"overload", "overflow"})


class IncidentTracker:
    """Open incidents per district, recomputed when an alert on a node changes tier."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.levels: dict[str, dict[str, tuple[int, str, str]]] = {}
        self.incidents: dict[str, IncidentState] = {}
        self.changed: dict[str, IncidentState] = {}

    def update(
        self, node: str, key: str, *, level: int, category: str, ts: int,
        fills: Mapping[str, dict[str, tuple[float, float]]],
    ) -> tuple[str | None, bool]:  # fmt: skip
        """Record an alert's new tier on ``node``; returns its incident and whether to notify.

        Only the transition that opens an incident or raises its tier notifies: the others
        ride along, listed in the incident.
        """
        at_node = self.levels.setdefault(node, {})
        if level > 0:
            at_node[key] = (level, category, key.split("\x1f", 1)[0])
        else:
            at_node.pop(key, None)
        district = self.network.nodes[node].district if node in self.network.nodes else ""
        before = {i.id: i.tier for i in self.incidents.values() if i.district == district}
        self._recompute(district, ts, fills)
        mine = next((i for i in self.incidents.values() if node in i.units), None)
        if mine is None:
            return None, True
        rose = mine.id not in before or mine.tier > before[mine.id]
        return mine.id, rose

    def _recompute(
        self, district: str, ts: int, fills: Mapping[str, dict[str, tuple[float, float]]]
    ) -> None:
        alerting = sorted(
            n for n, keys in self.levels.items()
            if keys and self.network.nodes.get(n) is not None
            and self.network.nodes[n].district == district
        )  # fmt: skip
        groups = self._components(alerting)
        open_here = [i for i in self.incidents.values() if i.district == district]
        # Each group inherits the open incident it shares most nodes with (ties: the older,
        # then the first opened here), one incident to a group. An index from node to open
        # incident keeps this linear in the district's alerting nodes: a storm's hundreds of
        # alerts in one district made a scan of every incident for every group quadratic.
        order = {inc.id: k for k, inc in enumerate(open_here)}
        holder = {u: inc for inc in open_here for u in inc.units}
        taken: set[str] = set()
        for units in groups:
            shared: dict[str, int] = {}
            for u in units:
                held = holder.get(u)
                if held is not None and held.id not in taken:
                    shared[held.id] = shared.get(held.id, 0) + 1
            best_id = max(
                shared,
                key=lambda i: (shared[i], -self.incidents[i].opened_ms, -order[i]),
                default=None,
            )
            best = self.incidents[best_id] if best_id is not None else None
            inc = self._refresh(best, district, units, ts, fills)
            taken.add(inc.id)
        for inc in open_here:
            if inc.id not in taken:
                inc.state, inc.updated_ms = "closed", ts
                self.changed[inc.id] = inc
                del self.incidents[inc.id]

    def _components(self, alerting: list[str]) -> list[list[str]]:
        parent = {n: n for n in alerting}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for n in alerting:
            node, hops = self.network.nodes[n].downstream, 0
            while node is not None and hops <= MAX_GAP:
                if node in parent:
                    parent[find(n)] = find(node)
                    break
                node, hops = self.network.nodes[node].downstream, hops + 1
        groups: dict[str, list[str]] = {}
        for n in alerting:
            groups.setdefault(find(n), []).append(n)
        return sorted(groups.values())

    def _refresh(
        self, inc: IncidentState | None, district: str, units: list[str], ts: int,
        fills: Mapping[str, dict[str, tuple[float, float]]],
    ) -> IncidentState:  # fmt: skip
        root = self.root_of(units, fills)
        entries = [e for u in units for e in self.levels[u].values()]
        tier = max(e[0] for e in entries)
        category = "overflow" if any(e[1] == "overflow" for e in entries) else "overload"
        at_root = sorted(self.levels[root].values(), key=lambda e: (-e[0], e[2]))
        root_device = at_root[0][2] if at_root else None
        if inc is None:
            inc = IncidentState(
                id=stable_id("inc", district, ts, units[0]), district=district, opened_ms=ts,
                updated_ms=ts, units=units, tier=tier, root_unit=root,
                root_device_id=root_device, category=category,
            )  # fmt: skip
            self.incidents[inc.id] = inc
            self.changed[inc.id] = inc
            return inc
        new = (units, max(inc.tier, tier), root, root_device, category)
        if new != (inc.units, inc.tier, inc.root_unit, inc.root_device_id, inc.category):
            inc.units, inc.tier, inc.root_unit, inc.root_device_id, inc.category = new
            inc.updated_ms = ts
            self.changed[inc.id] = inc
        return inc

    def root_of(self, units: list[str], fills: Mapping[str, dict[str, tuple[float, float]]]) -> str:
        """The root-cause rule: the most downstream surcharged node, else the most downstream."""
        hops = self.network.hops_to_outfall

        def surcharged(u: str) -> bool:
            seen = fills.get(u, {}).get("fill_ratio")
            return seen is not None and seen[1] > SURCHARGE_FILL

        pool = [u for u in units if surcharged(u)] or units
        return min(pool, key=lambda u: (hops.get(u, 0), u))

    def drain_changed(self) -> list[IncidentState]:
        """Incidents opened, changed or closed since the last call."""
        out = list(self.changed.values())
        self.changed.clear()
        return out
