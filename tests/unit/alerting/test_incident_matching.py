"""The incident tracker's matching of groups to open incidents, against the plain definition.

``IncidentTracker._recompute`` gives each connected group of alerting nodes the open incident
it shares most nodes with (ties: the older, then the first opened), one incident to a group.
It finds them through an index from node to incident (linear in the alerting nodes); the
reference below scans every open incident for every group, as the tracker did before (which
was quadratic in a storm's hundreds of alerts). Random alert sequences on a random forest of
nodes must give the same incidents, ids, roots, tiers and closings.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting._incidents import IncidentTracker
from alerting._network import Network, Node


class ReferenceTracker(IncidentTracker):
    """The tracker with its matching written as the definition reads."""

    def _recompute(
        self, district: str, ts: int, fills: Mapping[str, dict[str, tuple[float, float]]]
    ) -> None:
        alerting = sorted(
            n for n, keys in self.levels.items()
            if keys and self.network.nodes.get(n) is not None
            and self.network.nodes[n].district == district
        )  # fmt: skip
        open_here = [i for i in self.incidents.values() if i.district == district]
        taken: set[str] = set()
        for units in self._components(alerting):
            best = max(
                (i for i in open_here if i.id not in taken and set(i.units) & set(units)),
                key=lambda i: (len(set(i.units) & set(units)), -i.opened_ms),
                default=None,
            )
            taken.add(self._refresh(best, district, units, ts, fills).id)
        for inc in open_here:
            if inc.id not in taken:
                inc.state, inc.updated_ms = "closed", ts
                self.changed[inc.id] = inc
                del self.incidents[inc.id]


def _network(parents: list[int | None], districts: list[int]) -> Network:
    nodes = {}
    for k, parent in enumerate(parents):
        nodes[f"n{k:02d}"] = Node(
            id=f"n{k:02d}", district=f"d{districts[k]}", kind="junction", lat=0.0, lon=0.0,
            invert_elev_m=0.0, ground_elev_m=3.0,
            downstream=None if parent is None else f"n{parent:02d}",
        )  # fmt: skip
    return Network(MappingProxyType(nodes), MappingProxyType({}), MappingProxyType({}))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Network, list[tuple[int, int, int, float]]]:
    size = draw(st.integers(2, 24))
    # Node k drains into a node of lower index (or nowhere): a forest, as a network is.
    parents = [None] + [draw(st.one_of(st.none(), st.integers(0, k - 1))) for k in range(1, size)]
    districts = [draw(st.integers(0, 1)) for _ in range(size)]
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, size - 1),  # node
                st.integers(0, 1),  # which of two rules on it
                st.integers(0, 4),  # tier (0 clears)
                st.floats(0.0, 2.0),  # its fill ratio
            ),
            max_size=60,
        )
    )
    return _network(parents, districts), steps


def _state(tracker: IncidentTracker) -> list[tuple[object, ...]]:
    return sorted(
        (i.id, tuple(i.units), i.tier, i.root_unit, i.root_device_id, i.category, i.state,
         i.opened_ms, i.updated_ms)
        for i in tracker.incidents.values()
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_indexed_matching_gives_the_reference_incidents(
    scenario: tuple[Network, list[tuple[int, int, int, float]]],
) -> None:
    network, steps = scenario
    fast, ref = IncidentTracker(network), ReferenceTracker(network)
    fills: dict[str, dict[str, tuple[float, float]]] = {}
    for ts, (node_k, rule, tier, fill) in enumerate(steps, start=1):
        node = f"n{node_k:02d}"
        fills[node] = {"fill_ratio": (float(ts), fill)}
        key = f"dev-{node}\x1frule{rule}"
        category = "overflow" if rule else "overload"
        got = fast.update(node, key, level=tier, category=category, ts=ts * 1000, fills=fills)
        want = ref.update(node, key, level=tier, category=category, ts=ts * 1000, fills=fills)
        assert got == want
        assert _state(fast) == _state(ref)
        changed = sorted((i.id, i.state, tuple(i.units)) for i in fast.drain_changed())
        assert changed == sorted((i.id, i.state, tuple(i.units)) for i in ref.drain_changed())
