"""The capacity-aware predictor: each node's critical rain intensity from the network file
(``i_crit = 360·capacity / (runoff_coeff·upstream_area)``) against the nearest gauges' rain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerting import Engine, NetworkError, RuleError, load_network, network_from_dict
from alerting._conditions import LOAD_METRIC
from alerting._network import Network
from firmware_sim import make_fleet, write_network
from firmware_sim._network import generate_network
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, message, rules

GAUGE = Device("rg-jj-000001", DeviceKind.RAIN, "jiaojiang", 28.68, 121.44, 60.0, {})


def _node(node_id: str, down: str | None, **extra: float) -> dict[str, Any]:
    return {"id": node_id, "district": "jiaojiang", "kind": "junction" if down else "outfall",
            "lat": 28.68, "lon": 121.44, "invert_elev_m": 1.0, "ground_elev_m": 3.0,
            "downstream": down, **extra}  # fmt: skip


def _net(*nodes: dict[str, Any]) -> Network:
    return network_from_dict({
        "version": 1, "nodes": list(nodes),
        "devices": {"dr-jj-000001": "A"},
        "rain_gauges": {GAUGE.device_id: {"lat": GAUGE.lat, "lon": GAUGE.lon}},
    })  # fmt: skip


def test_the_critical_intensity_is_the_rational_method_inverted() -> None:
    net = _net(
        _node("A", "B", capacity_m3s=0.5, upstream_area_ha=10.0, runoff_coeff=0.6),
        _node("B", "OUT", capacity_m3s=2.0),  # no area: no critical intensity
        _node("OUT", None, upstream_area_ha=12.0, runoff_coeff=0.6),
    )
    # Q = C i A / 360  =>  i = 360 * 0.5 / (0.6 * 10) = 30 mm/h
    assert net.critical_rain == {"A": pytest.approx(30.0)}


@pytest.mark.parametrize(("field", "value"), [("runoff_coeff", 1.5), ("capacity_m3s", -1.0)])
def test_a_capacity_field_out_of_range_is_refused_naming_node_and_field(
    field: str, value: float
) -> None:
    with pytest.raises(NetworkError, match=rf"nodes\[0\] \('A'\): {field}"):
        _net(_node("A", "OUT", **{field: value}), _node("OUT", None))


CAPACITY = """
version: 1
kind: drain
rules:
  - name: drain.load
    category: overflow
    metric: fill_ratio
    tiers:
      - tier: orange
        raise:
          all:
            - {at_least: 0.5}
            - {capacity: {above: 0.8, over: 10m, nearest: 1, node: NODE, horizon: 20m}}
        clear: {below: 0.3}
"""


def _engine(tmp_path: Path, node: str) -> tuple[Engine, Device]:
    dev = drain("dr-jj-000001", node="A")
    net = _net(
        _node("A", "B", capacity_m3s=0.5, upstream_area_ha=10.0, runoff_coeff=0.6),  # 30 mm/h
        _node("B", "OUT", capacity_m3s=1.0, upstream_area_ha=40.0, runoff_coeff=0.6),  # 15 mm/h
        _node("OUT", None),
    )
    return Engine(rules(tmp_path, CAPACITY.replace("NODE", node)), [dev, GAUGE], net), dev


@pytest.mark.parametrize(
    ("node", "quiet_mmh", "loud_mmh"), [("self", 23.0, 25.0), ("downstream", 11.0, 13.0)]
)
def test_rain_beyond_the_pipes_capacity_raises_and_carries_the_prediction(
    tmp_path: Path, node: str, quiet_mmh: float, loud_mmh: float
) -> None:
    engine, dev = _engine(tmp_path, node)  # limit 0.8 x i_crit: 24 mm/h here, 12 below
    for minute in range(10):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": quiet_mmh}))
        assert engine.on_telemetry(*message(dev, minute, {"fill_ratio": 0.6})) == []
    for minute in range(10, 30):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": loud_mmh}))
    out = engine.on_telemetry(*message(dev, 30, {"fill_ratio": 0.6}))
    assert [(t.tier_from, t.tier_to) for t in out] == [("none", "orange")]
    pred = out[0].prediction
    assert pred is not None
    assert (pred.metric, pred.horizon_s, pred.time_to_s) == (LOAD_METRIC, 1200.0, 1200.0)


def test_without_the_nodes_capacity_the_tier_never_raises(tmp_path: Path) -> None:
    dev = drain("dr-jj-000001", node="A")
    net = _net(_node("A", "OUT"), _node("OUT", None))
    engine = Engine(rules(tmp_path, CAPACITY.replace("NODE", "self")), [dev, GAUGE], net)
    for minute in range(20):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 200.0}))
        assert engine.on_telemetry(*message(dev, minute, {"fill_ratio": 0.9})) == []


def test_unknown_holds_leaves_the_part_out_where_the_capacity_is_unknown(tmp_path: Path) -> None:
    dev = drain("dr-jj-000001", node="A")
    net = _net(_node("A", "OUT"), _node("OUT", None))
    text = CAPACITY.replace("node: NODE", "unknown: holds")
    engine = Engine(rules(tmp_path, text), [dev, GAUGE], net)
    assert engine.on_telemetry(*message(dev, 0, {"fill_ratio": 0.4})) == []
    out = engine.on_telemetry(*message(dev, 1, {"fill_ratio": 0.6}))  # the rest decides: no rain
    assert [(t.tier_from, t.tier_to) for t in out] == [("none", "orange")]
    assert out[0].prediction is None


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ("{capacity: {over: 30m}}", "give one of above"),
        ("{capacity: {above: 1, node: upstream}}", "node"),
        ("{capacity: {above: 1, within: 30m}}", "within"),
    ],
)
def test_a_bad_capacity_condition_is_named(tmp_path: Path, part: str, says: str) -> None:
    text = CAPACITY.replace(
        "- {capacity: {above: 0.8, over: 10m, nearest: 1, node: NODE, horizon: 20m}}", f"- {part}"
    )
    with pytest.raises(RuleError, match=rf"rule 'drain.load'.*{says}"):
        rules(tmp_path, text)


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ("{capacity: {above: 1}}", "capacity': only drain rules"),
        ("{head: {within_m: 0.2}}", r"field 'tiers\[0\].raise.all\[1\].head'"),
        ("{hgl: {above_m: 0.2}}", r"field 'tiers\[0\].raise.all\[1\].hgl'"),
    ],
)
def test_network_conditions_are_only_for_drains(tmp_path: Path, part: str, says: str) -> None:
    text = f"""
    version: 1
    kind: toilet
    rules:
      - name: toilet.x
        category: exceedance
        metric: nh3_mgm3
        tiers: [{{tier: yellow, raise: {{all: [{{above: 1}}, {part}]}}}}]
    """
    with pytest.raises(RuleError, match=rf"rule 'toilet.x'.*{says}"):
        rules(tmp_path, text)


def test_the_simulators_network_file_carries_capacity_and_catchment(tmp_path: Path) -> None:
    fleet = make_fleet("luqiao", DeviceKind.DRAIN, 40, seed=1)
    write_network(fleet, tmp_path / "network.json")
    doc = json.loads((tmp_path / "network.json").read_text(encoding="utf-8"))
    net = load_network(tmp_path / "network.json")
    sim = generate_network("luqiao", sum(n["kind"] == "junction" for n in doc["nodes"]))
    total_ha = sum(j.area_ha for j in sim.junctions)
    junctions = [n for n in doc["nodes"] if n["kind"] == "junction"]
    outfalls = [n for n in doc["nodes"] if n["kind"] == "outfall"]
    assert sum(n["upstream_area_ha"] for n in outfalls) == pytest.approx(total_ha, abs=0.01)
    assert all(0.35 <= n["runoff_coeff"] <= 0.95 for n in doc["nodes"])
    assert all(n["capacity_m3s"] > 0 for n in junctions)
    assert all(n["capacity_m3s"] is None for n in outfalls)
    by_id = {n["id"]: n for n in doc["nodes"]}
    for n in junctions:  # a node drains at least the area of every node draining into it
        assert by_id[n["downstream"]]["upstream_area_ha"] >= n["upstream_area_ha"] - 1e-3
    assert set(net.critical_rain) == {n["id"] for n in junctions}
