"""The steady grade line and the gauges' rain nowcast behind the ``hgl`` condition."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerting import Engine, RuleError, network_from_dict
from alerting._hydraulics import PathPipe, path_constants, steady_surface_m
from alerting._network import Network
from alerting._nowcast import REFRESH_S, Nowcast, best_matches, binned, window_mean
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, message, rules, tiers

T0 = 1_786_291_200.0


def _storm(minutes: int, lag: int = 0, scale: float = 1.0) -> np.ndarray:
    """Two rain bands over drizzle, peaking at minutes 100 and 220 (plus ``lag``)."""
    t = np.arange(minutes) - lag
    bands = 30.0 * np.exp(-(((t - 100) / 20.0) ** 2)) + 60.0 * np.exp(-(((t - 220) / 15.0) ** 2))
    return scale * (2.0 + bands + 5.0 * np.sin(t / 7.0) ** 2)


def _points(series: np.ndarray) -> deque[tuple[float, float]]:
    return deque(((T0 + 60.0 * (k + 1), float(v)) for k, v in enumerate(series)), maxlen=240)


def test_binning_keeps_one_value_a_minute_and_carries_the_last_over_gaps() -> None:
    points = [(T0 + 30.0, 4.0), (T0 + 50.0, 6.0), (T0 + 150.0, 9.0)]
    assert binned(points, T0 + 240.0, 4).tolist() == [5.0, 5.0, 9.0, 9.0]


def test_the_best_match_is_the_upwind_gauge_at_its_lag_and_scale() -> None:
    series = {"up": _storm(240), "down": _storm(240, lag=35, scale=1.2), "far": _storm(240, 5)}
    series["far"] = np.roll(series["far"], 100)  # uncorrelated at any allowed lag
    found = best_matches(series, min_lag=20, window=150)
    assert found["down"].source == "up"
    assert found["down"].lag_s == 35 * 60.0
    assert found["down"].scale == pytest.approx(1.2, rel=0.02)
    assert found["down"].corr > 0.99
    assert "up" not in found or found["up"].source != "down"  # nothing reaches it earlier


def test_the_forecast_is_the_upwind_rain_lag_minus_ahead_ago_times_the_scale() -> None:
    rain = {"up": _points(_storm(240)), "down": _points(_storm(240, lag=35, scale=1.2))}
    now = T0 + 240 * 60.0  # a refresh epoch falls within the series
    cast = Nowcast()
    got = cast.forecast_mmh(rain, "down", now, 1200.0, 600.0)
    up = window_mean(rain["up"], now + 1200.0 - 35 * 60.0, 600.0)
    assert up is not None
    assert got == pytest.approx(1.2 * up, rel=0.02)
    truth = _storm(260, lag=35, scale=1.2)[250:260].mean()  # the 10 min ending 20 min ahead
    assert truth > 40.0  # the main band, still to come at the gauge
    assert got == pytest.approx(truth, rel=0.05)


def test_without_an_upwind_match_the_forecast_is_the_rain_now() -> None:
    rain = {"down": _points(_storm(240)), "other": _points(np.zeros(240))}
    now = T0 + 240 * 60.0
    assert Nowcast().forecast_mmh(rain, "down", now, 1200.0, 600.0) == pytest.approx(
        window_mean(rain["down"], now, 600.0)
    )


def test_the_estimate_depends_only_on_readings_up_to_its_epoch() -> None:
    series = _storm(240, lag=35)
    rain = {"up": _points(_storm(240)), "down": _points(series)}
    epoch = (T0 + 240 * 60.0) // REFRESH_S * REFRESH_S
    first = Nowcast().matches_at(rain, epoch + 1.0, 1200.0)
    later = {**rain, "down": deque([*rain["down"], (epoch + 200.0, 500.0)], maxlen=240)}
    again = Nowcast().matches_at(later, epoch + 300.0, 1200.0)
    assert first == again


def _pipe(node: str, invert: float, friction: float = 0.2) -> PathPipe:
    return PathPipe(node, 28.68, 121.44, friction, 30.0, invert, 0.5)


def test_the_steady_line_adds_friction_heads_from_the_outfall_up() -> None:
    pipes = (_pipe("B", 1.0), _pipe("A", 1.2))
    # Outfall 1.5; B: max(1.5 + 0.2·4, 1.0 + 0.5) = 2.3; A: max(2.3 + 0.2·1, 1.7) = 2.5
    assert steady_surface_m(1.5, pipes, [2.0, 1.0]) == pytest.approx(2.5)
    # Light load: each node at its own flow depth, the outfall far below.
    assert steady_surface_m(0.0, pipes, [0.4, 0.4]) == pytest.approx(1.2 + 0.2)


GAUGES = {"rg-jj-000001": {"lat": 28.68, "lon": 121.44}}
PIPE = {"capacity_m3s": 0.5, "upstream_area_ha": 10.0, "runoff_coeff": 0.6,  # i_crit 30 mm/h
        "pipe_length_m": 100.0, "pipe_slope": 0.003, "pipe_diameter_m": 0.5}  # fmt: skip


def _node(node_id: str, down: str | None, invert: float, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "district": "jiaojiang", "kind": "junction" if down else "outfall",
            "lat": 28.68, "lon": 121.44, "invert_elev_m": invert, "ground_elev_m": 3.0,
            "downstream": down, **extra}  # fmt: skip


def _net(*nodes: dict[str, Any]) -> Network:
    return network_from_dict({"version": 1, "nodes": list(nodes),
                              "devices": {"dr-jj-000001": "A"}, "rain_gauges": GAUGES})  # fmt: skip


def test_path_constants_need_every_pipe_down_to_a_level_at_the_outfall() -> None:
    full = _net(_node("A", "B", 1.5, **PIPE), _node("B", "OUT", 1.0, **PIPE),
                _node("OUT", None, 0.5, pipe_diameter_m=1.0))  # fmt: skip
    found = path_constants(full, "A")
    assert found is not None
    assert (found[0], [p.node for p in found[1]]) == (1.5, ["B", "A"])
    gap = _net(_node("A", "B", 1.5, **PIPE), _node("B", "OUT", 1.0, capacity_m3s=0.5),
               _node("OUT", None, 0.5, pipe_diameter_m=1.0))  # fmt: skip
    assert path_constants(gap, "A") is None
    no_level = _net(_node("A", "OUT", 1.5, **PIPE), _node("OUT", None, 0.5))
    assert path_constants(no_level, "A") is None


HGL = """
version: 1
kind: drain
rules:
  - name: drain.hgl
    category: overflow
    metric: fill_ratio
    tiers:
      - tier: orange
        raise:
          all:
            - {at_least: 0.5}
            - {hgl: {above_m: 0.0, ahead: 0s, over: 10m, nearest: 1}}
        clear: {below: 0.3}
"""


def test_rain_that_sets_the_line_above_the_cover_raises(tmp_path: Path) -> None:
    gauge = Device("rg-jj-000001", DeviceKind.RAIN, "jiaojiang", 28.68, 121.44, 60.0, {})
    a = drain("dr-jj-000001", node="A", invert_elev_m=1.5)
    # Outfall at 2.4 (stage); A at 2.4 + 0.3·(i/30)²: the cover (3.0) at i = 42.4 mm/h.
    net = _net(_node("A", "OUT", 1.5, **PIPE), _node("OUT", None, 0.5, stage_m=2.4))
    engine = Engine(rules(tmp_path, HGL), [a, gauge], net)
    for minute in range(12):
        engine.on_telemetry(*message(gauge, minute, {"rain_mmh": 41.0}))
        assert engine.on_telemetry(*message(a, minute, {"fill_ratio": 0.6})) == []
    for minute in range(12, 24):
        engine.on_telemetry(*message(gauge, minute, {"rain_mmh": 44.0}))
    assert tiers(engine.on_telemetry(*message(a, 24, {"fill_ratio": 0.6}))) == [("none", "orange")]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ("{hgl: {ahead: 20m}}", "above_m"),
        ("{hgl: {above_m: 9}}", "above_m"),
        ("{hgl: {above_m: 0.5, ahead: 3h}}", "ahead"),
        ("{hgl: {above_m: 0.5, nearest: 11}}", "nearest"),
        ("{hgl: {above_m: 0.5, within_m: 0.3}}", "within_m"),
    ],
)
def test_a_bad_hgl_condition_is_named(tmp_path: Path, part: str, says: str) -> None:
    text = HGL.replace("- {hgl: {above_m: 0.0, ahead: 0s, over: 10m, nearest: 1}}", f"- {part}")
    with pytest.raises(RuleError, match=rf"rules.yaml: rule 'drain.hgl': field .*{says}"):
        rules(tmp_path, text)
