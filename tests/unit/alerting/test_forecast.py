"""The hydraulic forecast: the storm-motion check of the nowcast's matches, the rain it feeds
the model, the SWMM model written from the network file, and real SWMM runs in the worker."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting import Engine, network_from_dict
from alerting._forecast import (
    EFFECT_S,
    HORIZON_S,
    ISSUE_DELAY_S,
    STEP_S,
    Forecaster,
    NodeForecast,
    future_rain,
    minute_bins,
)
from alerting._network import Network
from alerting._nowcast import Match, Nowcast, coherent
from alerting._swmm_model import model_text, modelled_districts, static_model
from telemetry_core import AlertTransition, Channel, DeviceKind, Telemetry, Topic
from telemetry_core.registry import Device
from tests.unit.alerting.kit import rules

LAT, LON = 28.86, 121.13
M_PER_DEG = 111_320.0


def _east(metres: float) -> float:
    return LON + metres / (M_PER_DEG * math.cos(math.radians(LAT)))


def _north(metres: float) -> float:
    return LAT + metres / M_PER_DEG


# -- the storm-motion check --------------------------------------------------------------------


def _grid() -> dict[str, tuple[float, float]]:
    """Six gauges 0-20 km east and 0-6 km north of the first."""
    return {
        f"g{k}": (_north(6000.0 * (k % 2)), _east(4000.0 * k)) for k in range(6)
    }  # fmt: skip


def _moving_east(speed_ms: float) -> dict[str, Match]:
    """Each gauge following the one west of it by the time a storm moving east takes."""
    out = {}
    for k in range(1, 6):
        lag = 4000.0 / speed_ms
        out[f"g{k}"] = Match(f"g{k - 1}", lag, 1.0, 0.99)
    return out


def test_matches_of_one_moving_storm_are_kept() -> None:
    pos = _grid()
    true = _moving_east(4.0)  # 1000 s per 4 km
    assert coherent(true, pos) == true


def test_a_gauge_following_one_down_wind_of_it_is_dropped() -> None:
    pos = _grid()
    matches = _moving_east(4.0)
    # g0 "follows" g3, 12 km down-wind, at a lag a periodic band makes: no motion fits it
    matches["g0"] = Match("g3", 2400.0, 1.0, 0.95)
    kept = coherent(matches, pos)
    assert "g0" not in kept
    assert set(kept) == {f"g{k}" for k in range(1, 6)}


def test_an_implausible_scale_is_dropped_and_too_few_matches_keep_none() -> None:
    pos = _grid()
    matches = _moving_east(4.0)
    matches["g5"] = Match("g4", 1000.0, 7.0, 0.99)  # seven times the rain 4 km on
    assert "g5" not in coherent(matches, pos)
    two = {g: m for g, m in _moving_east(4.0).items() if g in ("g1", "g2")}
    assert coherent(two, pos) == {}


# -- the rain fed to the model -----------------------------------------------------------------


def test_minute_bins_put_a_reading_in_the_minute_it_ends() -> None:
    points = [(60.0, 10.0), (90.0, 20.0), (120.0, 30.0), (600.0, 5.0)]
    assert minute_bins(points, 0.0, 3) == [10.0, 25.0, 0.0]


def test_future_rain_follows_the_up_wind_gauge_then_persists_then_stops() -> None:
    t = 10_000.0
    up = deque((t - 3600 + 60 * k, float(k)) for k in range(61))  # rising to 60 mm/h at t
    here = deque((t - 600 + 60 * k, 2.0) for k in range(11))
    rain = {"up": up, "here": here}
    lag = 1800.0
    future = future_rain(rain, ["up", "here"], {"here": Match("up", lag, 0.5, 0.99)}, t, 600.0)
    minutes = int(HORIZON_S // 60)
    assert len(future["here"]) == minutes
    # minute k ends at t + 60(k+1): the up-wind gauge's reading 30 min before that, halved
    assert future["here"][0] == pytest.approx(0.5 * (60 - 30 + 1))
    assert future["here"][28] == pytest.approx(0.5 * 59)
    # past what was measured up-wind: the up-wind gauge's own persistence (its last 10
    # minutes' mean) for 10 minutes, then nothing
    up_mean = sum(range(51, 61)) / 10
    assert future["here"][30] == pytest.approx(0.5 * up_mean)
    assert future["here"][45] == 0.0
    assert future["up"][:10] == [pytest.approx(up_mean)] * 10
    assert future["up"][10:] == [0.0] * (minutes - 10)


# -- the model written from the network file ---------------------------------------------------


def _net(*, stage: float | None = 5.0, complete: bool = True) -> Network:
    """Three manholes in a row to a coastal outfall, 300 m apart, one gauge."""
    nodes = []
    inverts = (6.0, 5.5, 5.0)
    for k, inv in enumerate(inverts):
        down = f"dd-J{k + 1}" if k < 2 else "dd-OUT"
        node = {
            "id": f"dd-J{k}", "district": "dd", "kind": "junction", "lat": LAT,
            "lon": _east(300.0 * k), "invert_elev_m": inv, "ground_elev_m": inv + 2.0,
            "downstream": down, "pipe_diameter_m": 0.4 + 0.1 * k, "pipe_length_m": 300.0,
            "pipe_slope": 0.5 / 300.0, "capacity_m3s": 0.2 + 0.1 * k,
            "upstream_area_ha": 4.0 * (k + 1), "runoff_coeff": 0.8,
        }  # fmt: skip
        if not complete and k == 1:
            del node["upstream_area_ha"]
        nodes.append(node)
    nodes.append({
        "id": "dd-OUT", "district": "dd", "kind": "outfall", "lat": LAT, "lon": _east(900.0),
        "invert_elev_m": 4.5, "ground_elev_m": 6.5, "downstream": None, "stage_m": stage,
    })  # fmt: skip
    return network_from_dict({
        "version": 1, "nodes": nodes, "devices": {f"dr-dd-{k}": f"dd-J{k}" for k in range(3)},
        "rain_gauges": {"rg-dd-0": {"lat": LAT, "lon": LON}},
    })  # fmt: skip


def test_the_model_is_written_from_the_network_file() -> None:
    model = static_model(_net())
    assert model is not None
    assert model.junction_ids == {"dd-J0", "dd-J1", "dd-J2"}
    # each junction's own subcatchment: what drains to it less what drains to the node above
    assert [j.area_ha for j in model.junctions] == [4.0, 4.0, 4.0]
    assert all(j.impervious_pct == pytest.approx(75.0) for j in model.junctions)
    assert "dd-OUT 4.500 FIXED 5.000 YES" in model.text
    assert "P_dd-J0 dd-J0 dd-J1 300.0" in model.text
    text = model_text(model, 0.0, 600.0, {"rg-dd-0": [30.0] * 10}, save_hotstart="/x/h.hsf")
    assert 'SAVE HOTSTART "/x/h.hsf"' in text
    assert "R_rg-dd-0 0.15000 30.000" in text
    free = static_model(_net(stage=None))
    assert free is not None
    assert "dd-OUT 4.500 FREE NO" in free.text


def test_a_district_the_file_does_not_describe_whole_is_not_modelled() -> None:
    assert modelled_districts(_net(complete=False)) == set()
    assert static_model(_net(complete=False)) is None


def test_first_within_looks_only_ahead_of_now() -> None:
    fc = NodeForecast(1000.0, (0.5, 0.2, -0.01, 0.3))
    assert fc.first_within(1000.0, 3600.0, 0.0) == 180.0
    assert fc.first_within(1000.0, 120.0, 0.0) is None
    assert fc.first_within(1000.0, 3600.0, 0.25) == 120.0
    assert fc.first_within(1200.0, 3600.0, 0.0) is None  # the flood minute is past


# -- real SWMM -----------------------------------------------------------------------------------


def _rain(t_end: float, mmh: float, minutes: int = 120) -> dict[str, deque[tuple[float, float]]]:
    return {"rg-dd-0": deque((t_end - 60.0 * k, mmh) for k in range(minutes - 1, -1, -1))}


T0 = 1_786_291_200.0


@pytest.fixture
def forecaster() -> Iterator[Forecaster]:
    fc = Forecaster.for_network(_net(), [0.0, 600.0])
    assert fc is not None
    yield fc
    fc.close()


def test_a_cloudburst_floods_the_manholes_and_dry_weather_runs_nothing(
    forecaster: Forecaster,
) -> None:
    t = T0 + 2 * 3600
    forecaster.issue(t, _rain(t, 0.0), Nowcast())
    forecaster.settle()
    assert forecaster.forecasts == {}
    assert forecaster.runs == 0
    # 150 mm/h over 12 ha of 0.8 runoff coefficient is 4 m³/s into pipes of 0.2-0.4 m³/s
    forecaster.issue(t + 1, _rain(t, 150.0), Nowcast())
    forecaster.settle()
    assert forecaster.runs == 1
    assert forecaster.next_issue_s == t // STEP_S * STEP_S + STEP_S
    persisting = forecaster.forecasts[600.0]
    issued = persisting["dd-J0"].issued_s
    assert issued == t // STEP_S * STEP_S
    assert persisting["dd-J0"].first_within(issued, 3600.0, 0.0) is not None
    # the state was saved: the next issue goes on from it, and the rain stopping drains it
    forecaster.issue(t + STEP_S, _rain(t + STEP_S, 0.0, 3) | {}, Nowcast())
    forecaster.settle()
    assert forecaster.runs in (1, 2)


def test_a_light_rain_floods_nothing(forecaster: Forecaster) -> None:
    t = T0 + 2 * 3600
    forecaster.issue(t, _rain(t, 2.0), Nowcast())
    forecaster.settle()
    assert forecaster.runs == 1
    for by_node in forecaster.forecasts.values():
        assert all(fc.first_within(fc.issued_s, 3600.0, 0.0) is None for fc in by_node.values())


def test_a_failed_run_leaves_no_forecast_and_the_next_starts_again(
    forecaster: Forecaster,
) -> None:
    t = T0 + 2 * 3600
    forecaster.issue(t, _rain(t, 150.0), Nowcast())
    forecaster.settle()
    assert forecaster.forecasts
    worker = forecaster._worker
    assert worker is not None
    worker.proc.kill()
    worker.proc.wait()
    forecaster.issue(t + STEP_S, _rain(t + STEP_S, 150.0), Nowcast())
    forecaster.settle()
    assert forecaster.forecasts == {}
    assert forecaster.failures == 1
    assert forecaster.last_error is not None
    assert "the forecast worker" in forecaster.last_error
    forecaster.issue(t + 2 * STEP_S, _rain(t + 2 * STEP_S, 150.0), Nowcast())
    forecaster.settle()
    assert forecaster.forecasts
    assert forecaster.runs == 2


FORECAST_RULE = """
version: 1
kind: drain
rules:
  - name: flood
    category: overflow
    metric: fill_ratio
    tiers:
      - tier: orange
        raise: {forecast: {within: 60m}}
        clear: {forecast: {within: 60m, expect: dry}}
      - tier: red
        raise:
          all:
            - {forecast: {expect: blind}}
            - {metric: fill_ratio, above: 0.99}
"""


def _drain(k: int) -> Device:
    return Device(device_id=f"dr-dd-{k}", kind=DeviceKind.DRAIN, district="dd", lat=LAT,
                  lon=_east(300.0 * k), expected_interval_s=60.0)  # fmt: skip


def test_the_engine_raises_on_the_forecast_with_the_time_to_the_flood(tmp_path: Path) -> None:
    devices = [_drain(k) for k in range(3)]
    gauge = Device(device_id="rg-dd-0", kind=DeviceKind.RAIN, district="dd", lat=LAT, lon=LON,
                   expected_interval_s=60.0)  # fmt: skip
    engine = Engine(rules(tmp_path, FORECAST_RULE), [*devices, gauge], _net())
    try:
        out = []
        t0 = T0
        for minute in range(61):
            t = t0 + 60.0 * minute
            ms = int(t * 1000)
            fill = 0.5 if minute < 50 else 1.0
            msg = Telemetry(v=1, device_id="rg-dd-0", ts=ms, seq=minute, boot_id="b",
                            readings={"rain_mmh": 150.0})  # fmt: skip
            engine.on_telemetry(Topic("dd", DeviceKind.RAIN, "rg-dd-0", Channel.TELEMETRY), msg)
            for d in devices:
                reading = Telemetry(v=1, device_id=d.device_id, ts=ms, seq=minute, boot_id="b",
                                    readings={"level_m": 0.1, "fill_ratio": fill})  # fmt: skip
                topic = Topic("dd", DeviceKind.DRAIN, d.device_id, Channel.TELEMETRY)
                out += engine.on_telemetry(topic, reading)
            out += engine.tick(t)
        raised = [x for x in out if x.tier_to == "orange"]
        assert raised, "a cloudburst on small pipes must be forecast to flood"
        assert all(x.prediction is not None and x.prediction.metric == "freeboard_m"
                   for x in raised)  # fmt: skip
        assert all(x.ts < int((t0 + 50 * 60) * 1000) for x in raised)
        # one gauge: nothing is up-wind of it, the forecast is blind and the red way decides
        assert any(x.tier_to == "red" for x in out)
    finally:
        engine.close()


def test_without_a_forecast_the_default_overflow_rule_keeps_its_skip_gate() -> None:
    """An option that needs a forecast flood cannot hold at a node without one, so the fill
    gate of the other way still lets a quiet reading skip the rule (engine speed)."""
    from alerting import default_rules_dir, load_rules
    from firmware_sim import make_fleet

    device = make_fleet("linhai", DeviceKind.DRAIN, 1, seed=1)[0]
    engine = Engine(load_rules(default_rules_dir()), [device])
    plan = {ev.rule.name: gates for ev, gates in engine._devices[device.device_id].plan}
    assert plan["drain.overflow"] is not None


def test_impossible_rain_never_reaches_the_model(tmp_path: Path) -> None:
    """A gauge reporting rain no storm brings (a broken tipping bucket, a hostile message) is
    kept out of the rain window the forecast's SWMM model is driven by."""
    gauge = Device(device_id="rg-dd-0", kind=DeviceKind.RAIN, district="dd", lat=LAT, lon=LON,
                   expected_interval_s=60.0)  # fmt: skip
    engine = Engine(rules(tmp_path, FORECAST_RULE), [gauge, _drain(0)], _net())
    try:
        topic = Topic("dd", DeviceKind.RAIN, "rg-dd-0", Channel.TELEMETRY)
        for k, mmh in enumerate((12.0, 1e9, 30.0)):
            msg = Telemetry(v=1, device_id="rg-dd-0", ts=int((T0 + 60 * k) * 1000), seq=k,
                            boot_id="b", readings={"rain_mmh": mmh})  # fmt: skip
            engine.on_telemetry(topic, msg)
        assert [v for _, v in engine.world.rain["rg-dd-0"]] == [12.0, 30.0]
    finally:
        engine.close()


def test_an_issue_runs_beside_the_engine_and_takes_effect_at_its_effect_time(
    forecaster: Forecaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``issue`` hands the SWMM runs to the forecast thread and returns; the forecast stands
    only from ``settle``, which the engine calls at ``T + EFFECT_S`` of event time."""
    release = threading.Event()
    started = threading.Event()

    def slow_runs(at: float, *_: object) -> dict[float, dict[str, NodeForecast]]:
        started.set()
        assert release.wait(30.0), "the test never released the run"
        return {0.0: {"dd-J0": NodeForecast(at, (-0.1,) * 60)}}

    monkeypatch.setattr(forecaster, "_runs", slow_runs)
    t = T0 + 2 * 3600
    forecaster.issue(t, _rain(t, 150.0), Nowcast())
    assert started.wait(30.0)
    at = t // STEP_S * STEP_S
    assert forecaster.effect_s == at + EFFECT_S
    assert forecaster.forecasts == {}
    assert forecaster.runs == 0
    release.set()
    forecaster.settle()
    assert forecaster.runs == 1
    assert forecaster.forecasts[0.0]["dd-J0"].issued_s == at
    assert forecaster.effect_s == math.inf


def test_a_run_that_raises_anything_is_a_failed_forecast_not_a_dead_engine(
    forecaster: Forecaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> dict[float, dict[str, NodeForecast]]:
        raise RuntimeError("a bug in the model writer")

    monkeypatch.setattr(forecaster, "_runs", broken)
    t = T0 + 2 * 3600
    forecaster.issue(t, _rain(t, 150.0), Nowcast())
    forecaster.settle()
    assert forecaster.failures == 1
    assert forecaster.forecasts == {}
    assert forecaster.last_error is not None
    assert "a bug in the model writer" in forecaster.last_error


def test_the_engine_applies_a_forecast_from_its_effect_time_on(tmp_path: Path) -> None:
    """Boundary ``T`` is issued once event time is ``ISSUE_DELAY_S`` past it; readings before
    ``T + EFFECT_S`` see the forecast before, the first at or after it the new one, in a replay
    as live (the engine waits for the runs there if need be)."""
    gauge = Device(device_id="rg-dd-0", kind=DeviceKind.RAIN, district="dd", lat=LAT, lon=LON,
                   expected_interval_s=60.0)  # fmt: skip
    engine = Engine(rules(tmp_path, FORECAST_RULE), [gauge, _drain(0)], _net())
    fc = engine.world.forecaster
    assert fc is not None
    topic = Topic("dd", DeviceKind.RAIN, "rg-dd-0", Channel.TELEMETRY)

    def rain_at(t: float, seq: int) -> None:
        msg = Telemetry(v=1, device_id="rg-dd-0", ts=int(t * 1000), seq=seq, boot_id="b",
                        readings={"rain_mmh": 150.0})  # fmt: skip
        engine.on_telemetry(topic, msg)

    try:
        at = T0 + 2 * 3600  # a boundary
        for k in range(30):
            rain_at(at - 60.0 * (29 - k), k)
        rain_at(at + ISSUE_DELAY_S - 1, 30)
        assert fc.next_issue_s <= at  # the boundary's readings may still be on their way
        engine.tick(at + ISSUE_DELAY_S)
        assert fc.next_issue_s == at + STEP_S
        assert fc.effect_s == at + EFFECT_S
        runs = fc.runs  # the boundaries before, issued as the rain came in

        def issued() -> set[float]:
            return {f.issued_s for by_node in fc.forecasts.values() for f in by_node.values()}

        rain_at(at + EFFECT_S - 1, 31)
        assert fc.runs == runs
        assert issued() == {at - STEP_S}
        rain_at(at + EFFECT_S, 32)
        assert fc.runs == runs + 1
        assert issued() == {at}, "the forecast stands from its effect time"
        assert fc.effect_s == math.inf
    finally:
        engine.close()


def test_the_forecasts_depend_neither_on_ticks_nor_on_readings_a_little_late(
    tmp_path: Path,
) -> None:
    """A live service ticks on wall time, a backtest at each minute before its readings, the
    test harness after them; live, a gauge's reading may arrive after readings stamped later.
    Forecasts are issued by event time once the boundary's readings are in (``ISSUE_DELAY_S``)
    and applied at their effect time, so every run sees the same forecasts at every reading and
    gives the same transitions."""
    devices = [_drain(k) for k in range(3)]
    gauge = Device(device_id="rg-dd-0", kind=DeviceKind.RAIN, district="dd", lat=LAT, lon=LON,
                   expected_interval_s=60.0)  # fmt: skip
    ruleset = rules(tmp_path, FORECAST_RULE)
    rain_topic = Topic("dd", DeviceKind.RAIN, "rg-dd-0", Channel.TELEMETRY)
    values = {"level_m": 0.1, "fill_ratio": 0.5}

    def run(
        tick_before: bool, tick_after: bool, gauge_late: bool
    ) -> tuple[list[tuple[str, str, str, int]], list[object]]:
        engine = Engine(ruleset, [*devices, gauge], _net())
        out: list[AlertTransition] = []
        seen: list[object] = []
        try:
            for minute in range(40):
                t = T0 + 60.0 * minute
                if tick_before:
                    out += engine.tick(t)
                # a burst every other minute, read 10 s before the drains' readings
                mmh = (200.0 if minute % 2 else 20.0) if minute < 25 else 5.0
                rain = Telemetry(v=1, device_id="rg-dd-0", ts=int((t - 10) * 1000), seq=minute,
                                 boot_id="b", readings={"rain_mmh": mmh})  # fmt: skip
                if not gauge_late:
                    engine.on_telemetry(rain_topic, rain)
                for d in devices:
                    reading = Telemetry(v=1, device_id=d.device_id, ts=int((t + 5) * 1000),
                                        seq=minute, boot_id="b", readings=values)  # fmt: skip
                    topic = Topic("dd", DeviceKind.DRAIN, d.device_id, Channel.TELEMETRY)
                    out += engine.on_telemetry(topic, reading)
                    fc = engine.world.forecaster
                    assert fc is not None
                    seen.append(sorted((p, n, f.issued_s, f.freeboard_m)
                                       for p, by in fc.forecasts.items()
                                       for n, f in by.items()))  # fmt: skip
                if gauge_late:  # it arrives after the drains' readings stamped 15 s later
                    engine.on_telemetry(rain_topic, rain)
                if tick_after:
                    out += engine.tick(t + 5)
        finally:
            engine.close()
        return [(x.device_id, x.tier_from, x.tier_to, x.ts) for x in out], seen

    harness = run(tick_before=False, tick_after=True, gauge_late=False)
    transitions, seen = harness
    assert any(x[2] == "orange" for x in transitions)
    assert len({str(s) for s in seen}) > 3, "several forecasts were issued"
    assert run(tick_before=True, tick_after=False, gauge_late=False) == harness
    assert run(tick_before=False, tick_after=False, gauge_late=False) == harness
    assert run(tick_before=False, tick_after=True, gauge_late=True) == harness


def test_a_backtest_reports_what_the_forecast_cost(tmp_path: Path) -> None:
    from telemetry_core.registry import Registry
    from xiuhua.alerting_backtest import format_report, run_backtest

    devices = [_drain(k) for k in range(3)]
    gauge = Device(device_id="rg-dd-0", kind=DeviceKind.RAIN, district="dd", lat=LAT, lon=LON,
                   expected_interval_s=60.0)  # fmt: skip
    items = []
    for minute in range(30):
        ms = int((T0 + 60.0 * minute) * 1000)
        items.append((ms, Topic("dd", DeviceKind.RAIN, "rg-dd-0", Channel.TELEMETRY),
                      Telemetry(v=1, device_id="rg-dd-0", ts=ms, seq=minute, boot_id="b",
                                readings={"rain_mmh": 150.0})))  # fmt: skip
    result = run_backtest(rules(tmp_path, FORECAST_RULE), Registry([*devices, gauge]), _net(),
                          items, with_baseline=False)  # fmt: skip
    assert result.forecast is not None
    runs, failures, seconds, _waited = result.forecast
    assert runs >= 5
    assert failures == 0
    assert seconds > 0
    report = format_report(result)
    assert report[-1].startswith(f"forecast: {runs} issues (0 failed), ")
