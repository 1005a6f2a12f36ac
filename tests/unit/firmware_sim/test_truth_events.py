"""Ground truth as events: merging by the documented rule, units, volumes, files, period edges."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim import (
    MERGE_GAP_S,
    FleetSimulation,
    TruthEvent,
    TruthFileError,
    load_truth_events,
    make_fleet,
    merge_events,
    run_to_files,
    write_truth_events,
)
from telemetry_core.kinds import DeviceKind
from tests.unit.firmware_sim.conftest import START_S, scenario

KEYS = {"label", "unit", "device_ids", "district", "kind", "onset_s", "end_s", "peak",
        "peak_at_s", "volume_m3", "detail"}  # fmt: skip


def _span(onset_min: float, end_min: float, **fields: object) -> TruthEvent:
    base: dict[str, object] = {
        "label": "overflow", "unit": "jj-J001", "device_ids": ("dr-jj-000001",),
        "district": "jiaojiang", "kind": "drain", "onset_s": START_S + 60 * onset_min,
        "end_s": START_S + 60 * end_min, "peak": 0.1, "peak_at_s": START_S + 60 * onset_min,
        "volume_m3": 1.0,
    }  # fmt: skip
    return TruthEvent(**(base | fields))  # type: ignore[arg-type]


def test_spans_closer_than_the_gap_merge_and_others_stay_apart() -> None:
    spans = [
        _span(0, 2),
        _span(10, 12, peak=0.3, peak_at_s=START_S + 660, device_ids=("dr-jj-000002",)),
        _span(41, 43),  # 29 min after the last end: joins
        _span(73, 74),  # 30 min after: a new event, kept although it is short
        _span(0, 5, unit="jj-J002"),
        _span(3, 4, label="surcharge", volume_m3=None),
    ]
    events = merge_events(spans)
    by = {(e.unit, e.label, e.onset_s): e for e in events}
    assert len(events) == 4
    first = by["jj-J001", "overflow", START_S]
    assert first.end_s == START_S + 43 * 60
    assert (first.peak, first.peak_at_s) == (0.3, START_S + 660)
    assert first.volume_m3 == pytest.approx(3.0)
    assert first.device_ids == ("dr-jj-000001", "dr-jj-000002")
    assert by["jj-J001", "overflow", START_S + 73 * 60].end_s == START_S + 74 * 60
    assert by["jj-J001", "surcharge", START_S + 180].volume_m3 is None


def test_different_details_are_different_events() -> None:
    kitchen = _span(0, 10, label="bin_full", detail="category=kitchen", volume_m3=None)
    other = _span(5, 15, label="bin_full", detail="category=other", volume_m3=None)
    assert len(merge_events([kitchen, other])) == 2


def test_events_round_trip_through_the_file(tmp_path: Path) -> None:
    events = merge_events([_span(0, 2), _span(100, 102, peak=None, peak_at_s=None)])
    path = tmp_path / "truth_events.jsonl"
    assert write_truth_events(events, path) == 2
    assert set(json.loads(path.read_text().splitlines()[0])) == KEYS
    assert load_truth_events(path) == events
    path.write_text(path.read_text() + '{"label": "overflow"}\n')
    with pytest.raises(TruthFileError, match=r"truth_events.jsonl:3"):
        load_truth_events(path)


def test_devices_on_one_manhole_make_one_event_with_its_volume(swmm_cache: Path) -> None:
    storm = [{"kind": "design_storm", "start_h": 0.5, "return_period_y": 20,
              "duration_min": 120, "peak_ratio": 0.4}]  # fmt: skip
    # 18 sensors on 6 manholes: three per manhole.
    fleet = make_fleet("tiantai", DeviceKind.DRAIN, 18, 1, nodes_per_district=6)
    sim = FleetSimulation(fleet, scenario(duration_h=6, rain=storm), 1, START_S,
                          nodes_per_district=6, cache_dir=swmm_cache)  # fmt: skip
    until = START_S + 6 * 3600
    events = sim.truth_events(until)
    overflow = [e for e in events if e.label == "overflow"]
    assert overflow, "a 20-year storm overflows some manhole of a small network"
    assert len({e.unit for e in overflow}) == len({(e.unit, e.onset_s) for e in overflow})
    for e in overflow:
        assert e.unit.startswith("tt-J")
        assert len(e.device_ids) == 3
        assert {d.attributes["swmm_node"] for d in fleet if d.device_id in e.device_ids} == {
            e.unit.split("-", 1)[1]
        }
        assert e.volume_m3 is not None
        assert e.volume_m3 > 0
        assert e.peak is not None
        assert e.peak_at_s is not None
        assert e.onset_s <= e.peak_at_s < e.end_s
    # The volume is SWMM's flooding integrated over the event.
    _, _, model = sim.kind_state(DeviceKind.DRAIN)
    result = model.hydraulics(None, 60)  # type: ignore[attr-defined]
    total = float(result.flooding_m3s.sum() * 60.0)
    assert sum(e.volume_m3 or 0.0 for e in overflow) == pytest.approx(total, rel=0.02)
    raw = [r for r in sim.ground_truth(until) if r.what == "overflow"]
    assert len(raw) >= 3 * len(overflow)


def test_a_fault_from_hour_zero_has_no_extra_record_at_the_period_edge(tmp_path: Path) -> None:
    fleet = make_fleet("xianju", DeviceKind.TOILET, 4, 1)
    faults = [{"type": "drift", "kinds": ["toilet"], "start_h": 0, "duration_h": 2},
              {"type": "noise", "kinds": ["toilet"], "start_h": 0, "duration_h": 3}]  # fmt: skip
    summary = run_to_files(fleet, scenario(duration_h=3, sensor_faults=faults), seed=1,
                           start_s=START_S, duration_s=3 * 3600, out_dir=tmp_path)  # fmt: skip
    assert summary.truth_events_path is not None
    events = load_truth_events(summary.truth_events_path)
    drift = [e for e in events if e.label == "fault:drift"]
    noise = [e for e in events if e.label == "fault:noise"]
    assert sorted(e.unit for e in drift) == sorted(d.device_id for d in fleet)
    assert {(e.onset_s, e.end_s) for e in drift} == {(START_S, START_S + 7200)}
    assert {(e.onset_s, e.end_s) for e in noise} == {(START_S, START_S + 3 * 3600)}
    raw = [json.loads(line) for line in summary.truth_path.read_text().splitlines()]
    assert all(r["start_s"] < START_S + 3 * 3600 for r in raw)
    assert summary.ticks == 180


def test_odour_and_bins_are_labelled_with_class_and_category() -> None:
    fleet = make_fleet("linhai", DeviceKind.TOILET, 6, 2) + make_fleet(
        "linhai", DeviceKind.GARBAGE, 6, 2
    )
    toilet = fleet[0].device_id
    incidents = [{"type": "fan_failure", "devices": [toilet], "start_h": 7, "duration_h": 4}]
    missed = [{"kinds": ["garbage"], "start_h": 18, "duration_h": 2, "categories": ["kitchen"]}]
    sim = FleetSimulation(fleet, scenario(duration_h=36, incidents=incidents,
                                          missed_collections=missed), 1, START_S)  # fmt: skip
    events = sim.truth_events(START_S + 32 * 3600)
    klass = int(fleet[0].attr("toilet_class"))
    odour = [e for e in events if e.unit == toilet and e.label.startswith("odour_")]
    assert odour
    assert all(e.detail == f"class={klass}" for e in odour)
    assert all(START_S + 7 * 3600 <= e.onset_s < START_S + 11 * 3600 for e in odour)
    missed_events = [e for e in events if e.label == "missed_collection"]
    assert {e.detail for e in missed_events} == {"category=kitchen"}
    assert {e.unit for e in missed_events} == {d.device_id for d in fleet[6:]}
    assert {(e.onset_s, e.end_s) for e in missed_events} == {
        (START_S + 19 * 3600, START_S + 31 * 3600)
    }
    assert all(np.isfinite(e.peak or np.nan) for e in missed_events)


def test_drain_event_units_are_the_network_files_nodes(tmp_path: Path, swmm_cache: Path) -> None:
    storm = [{"kind": "design_storm", "start_h": 0.5, "return_period_y": 20,
              "duration_min": 120, "peak_ratio": 0.4}]  # fmt: skip
    fleet = make_fleet("tiantai", DeviceKind.DRAIN, 18, 1, nodes_per_district=6)
    summary = run_to_files(fleet, scenario(duration_h=4, rain=storm), seed=1, start_s=START_S,
                           duration_s=4 * 3600, out_dir=tmp_path, cache_dir=swmm_cache)  # fmt: skip
    assert summary.truth_events_path is not None
    devices = json.loads((tmp_path / "network.json").read_text())["devices"]
    drains = [e for e in load_truth_events(summary.truth_events_path)
              if e.label in ("overflow", "surcharge")]  # fmt: skip
    assert drains
    for e in drains:
        assert {devices[d] for d in e.device_ids} == {e.unit}
        assert sorted(d for d, node in devices.items() if node == e.unit) == list(e.device_ids)


@given(
    st.lists(
        st.tuples(st.sampled_from(["jj-J001", "jj-J002"]), st.integers(0, 600), st.integers(1, 90),
                  st.floats(0, 10)),
        max_size=30,
    )
)  # fmt: skip
def test_merging_covers_every_span_keeps_the_volume_and_leaves_gaps_of_at_least_g(
    rows: list[tuple[str, int, int, float]],
) -> None:
    spans = [_span(a, a + n, unit=u, volume_m3=v) for u, a, n, v in rows]
    events = merge_events(spans)
    assert sum(e.volume_m3 or 0.0 for e in events) == pytest.approx(sum(v for *_, v in rows))
    for s in spans:
        assert any(e.unit == s.unit and e.onset_s <= s.onset_s and s.end_s <= e.end_s
                   for e in events)  # fmt: skip
    for unit in {e.unit for e in events}:
        mine = sorted((e for e in events if e.unit == unit), key=lambda e: e.onset_s)
        assert all(b.onset_s - a.end_s >= MERGE_GAP_S for a, b in itertools.pairwise(mine))
