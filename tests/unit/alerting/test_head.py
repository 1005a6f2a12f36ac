"""The predicted head: the water surface a node is heading for, from the level measured at the
node below plus the friction head of the pipe between (``L·S·(Q/Q_full)²``), with the load from
the rain over the pipe's critical intensity or the measured flow over its capacity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerting import Engine, RuleError, load_network, network_from_dict
from alerting._hydraulics import HeadConstants, head_constants, predicted_surface_m
from alerting._network import Network
from alerting.errors import NetworkError
from firmware_sim import make_fleet, write_network
from firmware_sim._geo import district
from firmware_sim._network import generate_network
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, message, rules, tiers

GAUGE = Device("rg-jj-000001", DeviceKind.RAIN, "jiaojiang", 28.68, 121.44, 60.0, {})
PIPE = {"capacity_m3s": 0.5, "upstream_area_ha": 10.0, "runoff_coeff": 0.6,  # i_crit 30 mm/h
        "pipe_length_m": 100.0, "pipe_slope": 0.003}  # fmt: skip  # L·S = 0.3 m


def _node(node_id: str, down: str | None, invert: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "district": "jiaojiang", "kind": "junction" if down else "outfall",
            "lat": 28.68, "lon": 121.44, "invert_elev_m": invert, "ground_elev_m": 3.0,
            "downstream": down, **extra}  # fmt: skip


def _net(*nodes: dict[str, Any]) -> Network:
    ids = {n["id"] for n in nodes}
    devices = {d: n for d, n in (("dr-jj-000001", "A"), ("dr-jj-000002", "B")) if n in ids}
    return network_from_dict({
        "version": 1, "nodes": list(nodes), "devices": devices,
        "rain_gauges": {GAUGE.device_id: {"lat": GAUGE.lat, "lon": GAUGE.lon}},
    })  # fmt: skip


def test_the_predicted_surface_is_the_level_below_plus_the_friction_head() -> None:
    c = HeadConstants("B", below_invert_m=0.7, below_full_m=None, friction_m=0.3,
                      capacity_m3s=0.5, i_crit_mmh=30.0, ground_m=3.0)  # fmt: skip
    assert predicted_surface_m(c, 1.6, 0.0) == pytest.approx(2.3)
    assert predicted_surface_m(c, 1.6, 1.0) == pytest.approx(2.6)  # full: loses L·S
    assert predicted_surface_m(c, 1.6, 2.0) == pytest.approx(3.5)  # twice the flow: 4 L·S


def test_constants_come_from_the_network_file_and_need_pipe_and_catchment() -> None:
    net = _net(_node("A", "B", **PIPE), _node("B", "OUT", 0.7), _node("OUT", None, 0.5))
    c = head_constants(net, "A")
    assert c is not None
    assert (c.below, c.below_invert_m, c.below_full_m) == ("B", 0.7, None)
    assert c.friction_m == pytest.approx(0.3)
    assert (c.i_crit_mmh, c.ground_m) == (30.0, 3.0)
    assert head_constants(net, "B") is None  # no pipe length or slope, no capacity
    assert head_constants(net, "OUT") is None


def test_an_outfall_holds_its_stage_or_its_crown() -> None:
    net = _net(
        _node("A", "OUT", **PIPE),
        _node("OUT", None, 0.5, pipe_diameter_m=1.0, stage_m=2.5),
        _node("B", "OUT2", **PIPE),
        _node("OUT2", None, 0.5, pipe_diameter_m=1.0, stage_m=0.2),
    )
    assert net.nodes["OUT"].full_level_m() == 2.5  # the tide above the crown
    assert net.nodes["OUT2"].full_level_m() == 1.5  # the crown above the tide
    a, b = head_constants(net, "A"), head_constants(net, "B")
    assert a is not None
    assert b is not None
    assert (a.below_full_m, b.below_full_m) == (2.5, 1.5)


HEAD = """
version: 1
kind: drain
rules:
  - name: drain.head
    category: overflow
    metric: fill_ratio
    tiers:
      - tier: orange
        raise:
          all:
            - {at_least: 0.5}
            - {head: {within_m: 0.3, over: 10m, nearest: 1, LOAD}}
        clear: {below: 0.3}
"""


def _engine(tmp_path: Path, load: str = "load: rain") -> tuple[Engine, Device, Device]:
    a, b = drain("dr-jj-000001", node="A"), drain("dr-jj-000002", node="B", invert_elev_m=0.7)
    net = _net(_node("A", "B", **PIPE), _node("B", "OUT", 0.7), _node("OUT", None, 0.5))
    return Engine(rules(tmp_path, HEAD.replace("LOAD", load)), [a, b, GAUGE], net), a, b


@pytest.mark.parametrize(("quiet_mmh", "loud_mmh"), [(33.0, 36.0)])
def test_rain_that_lifts_the_surface_to_the_cover_raises(
    tmp_path: Path, quiet_mmh: float, loud_mmh: float
) -> None:
    # Below at 0.7 + 1.6 = 2.3 m; the cover at 3.0 less 0.3 m: 2.7 m. Friction 0.3·(i/30)²
    # reaches the 0.4 m it needs at i = 34.6 mm/h.
    engine, a, b = _engine(tmp_path)
    for minute in range(12):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": quiet_mmh}))
        engine.on_telemetry(*message(b, minute, {"level_m": 1.6, "fill_ratio": 3.2}))
        assert engine.on_telemetry(*message(a, minute, {"fill_ratio": 0.6})) == []
    for minute in range(12, 24):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": loud_mmh}))
        engine.on_telemetry(*message(b, minute, {"level_m": 1.6, "fill_ratio": 3.2}))
    out = engine.on_telemetry(*message(a, 24, {"fill_ratio": 0.6}))
    assert tiers(out) == [("none", "orange")]


def test_a_low_level_below_keeps_it_quiet_in_the_same_rain(tmp_path: Path) -> None:
    engine, a, b = _engine(tmp_path)
    for minute in range(20):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 40.0}))  # friction 0.53 m
        engine.on_telemetry(*message(b, minute, {"level_m": 0.8, "fill_ratio": 1.6}))
        assert engine.on_telemetry(*message(a, minute, {"fill_ratio": 0.6})) == []


def test_without_a_recent_level_below_nothing_is_predicted(tmp_path: Path) -> None:
    engine, a, b = _engine(tmp_path)
    engine.on_telemetry(*message(b, 0, {"level_m": 1.9, "fill_ratio": 3.8}))
    for minute in range(16, 30):  # the level below is older than max_age (15 min)
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 60.0}))
        assert engine.on_telemetry(*message(a, minute, {"fill_ratio": 0.6})) == []


def test_load_max_takes_the_measured_flow_when_it_exceeds_the_rains(tmp_path: Path) -> None:
    engine, a, b = _engine(tmp_path, "load: max")
    for minute in range(12):  # rain load 0.33: 2.33 m; flow 1.2 x capacity: 2.3 + 0.43 m
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 10.0}))
        engine.on_telemetry(*message(b, minute, {"level_m": 1.6, "fill_ratio": 3.2}))
    quiet = engine.on_telemetry(*message(a, 12, {"fill_ratio": 0.6, "flow_m3s": 0.4}))
    loud = engine.on_telemetry(*message(a, 13, {"fill_ratio": 0.6, "flow_m3s": 0.6}))
    assert (tiers(quiet), tiers(loud)) == ([], [("none", "orange")])


def test_without_the_pipe_in_the_network_file_the_tier_never_raises(tmp_path: Path) -> None:
    a = drain("dr-jj-000001", node="A")
    net = _net(_node("A", "OUT", capacity_m3s=0.5), _node("OUT", None, 0.5, stage_m=2.9))
    engine = Engine(rules(tmp_path, HEAD.replace("LOAD", "load: rain")), [a, GAUGE], net)
    for minute in range(12):
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 200.0}))
        assert engine.on_telemetry(*message(a, minute, {"fill_ratio": 0.9})) == []


def test_an_outfalls_stage_stands_for_the_level_below(tmp_path: Path) -> None:
    a = drain("dr-jj-000001", node="A")
    net = _net(_node("A", "OUT", **PIPE), _node("OUT", None, 0.5, stage_m=2.5))
    engine = Engine(rules(tmp_path, HEAD.replace("LOAD", "load: rain")), [a, GAUGE], net)
    for minute in range(10):  # 2.5 + 0.3·(27/30)² = 2.74 m: above 2.7
        engine.on_telemetry(*message(GAUGE, minute, {"rain_mmh": 27.0}))
    assert tiers(engine.on_telemetry(*message(a, 10, {"fill_ratio": 0.6}))) == [("none", "orange")]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ("{head: {over: 10m}}", "within_m"),
        ("{head: {within_m: -0.1}}", "within_m"),
        ("{head: {within_m: 0.3, load: flow}}", "load"),
        ("{head: {within_m: 0.3, nearest: 0}}", "nearest"),
        ("{head: {within_m: 0.3, above: 1}}", "above"),
        ("{head: {within_m: 0.3, unknown: maybe}}", "unknown"),
    ],
)
def test_a_bad_head_condition_is_named(tmp_path: Path, part: str, says: str) -> None:
    text = HEAD.replace("- {head: {within_m: 0.3, over: 10m, nearest: 1, LOAD}}", f"- {part}")
    with pytest.raises(RuleError, match=rf"rules.yaml: rule 'drain.head': field .*{says}"):
        rules(tmp_path, text)


@pytest.mark.parametrize(("field", "value"), [("pipe_slope", 1.5), ("pipe_length_m", -3.0)])
def test_a_pipe_field_out_of_range_is_refused_naming_node_and_field(
    field: str, value: float
) -> None:
    with pytest.raises(NetworkError, match=rf"nodes\[0\] \('A'\): {field}"):
        _net(_node("A", "OUT", **{field: value}), _node("OUT", None))


def test_a_file_without_the_pipe_fields_still_loads() -> None:
    net = _net(_node("A", "OUT"), _node("OUT", None))
    assert net.nodes["A"].friction_head_m() is None
    assert net.nodes["OUT"].full_level_m() is None


def test_the_simulators_network_file_carries_each_pipe_and_the_tide(tmp_path: Path) -> None:
    fleet = make_fleet("luqiao", DeviceKind.DRAIN, 40, seed=1)
    fleet += make_fleet("xianju", DeviceKind.DRAIN, 40, seed=2)
    write_network(fleet, tmp_path / "network.json")
    doc = json.loads((tmp_path / "network.json").read_text(encoding="utf-8"))
    net = load_network(tmp_path / "network.json")
    for name in ("luqiao", "xianju"):
        sim = generate_network(name, 40)
        code = district(name).code
        for c in sim.conduits:
            node = net.nodes[f"{code}-{c.upstream}"]
            assert (node.pipe_length_m, node.pipe_diameter_m) == (c.length_m, c.diameter_m)
            assert node.pipe_slope == pytest.approx(c.slope, abs=1e-6)
    stages = {n["district"]: n["stage_m"] for n in doc["nodes"] if n["kind"] == "outfall"}
    assert stages == {"luqiao": district("luqiao").tide_amplitude_m, "xianju": None}
    assert all(head_constants(net, n) is not None for n in net.nodes if "OUT" not in n)
