"""Runs to files and the ``xiuhua sim`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from firmware_sim import (
    OUTPUT_FORMATS,
    FleetSimulation,
    load_scenario,
    load_truth_events,
    make_fleet,
    parse_duration,
    run_to_files,
)
from telemetry_core.clock import ManualClock
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, load_registry, write_registry_csv
from telemetry_core.schema import Event, Telemetry, decode, encode
from tests.unit.firmware_sim.conftest import START_S
from xiuhua.commands.sim import OutputFormat, app


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "30s", "15m", "6h", "2d")] == [
        90,
        30,
        900,
        21_600,
        172_800,
    ]
    for bad in ("", "-1h", "6x", "0m"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_run_writes_contract_messages_and_ground_truth(tmp_path: Path, swmm_cache: Path) -> None:
    fleet = make_fleet("tiantai", None, 30, 2, nodes_per_district=6)
    summary = run_to_files(
        fleet, load_scenario("sensor_faults"), seed=1, start_s=START_S, duration_s=3 * 3600,
        out_dir=tmp_path, cache_dir=swmm_cache,
    )  # fmt: skip
    lines = summary.readings_path.read_bytes().splitlines()
    assert len(lines) == summary.readings > 0
    messages = [decode(line, Telemetry) for line in lines]
    assert {m.device_id for m in messages} == {d.device_id for d in fleet}
    first = [m for m in messages if m.device_id == fleet[0].device_id]
    assert [m.seq for m in first] == list(range(len(first)))
    events = [decode(e, Event) for e in summary.events_path.read_bytes().splitlines()]
    assert len(events) == summary.failed_reads
    truth = [json.loads(line) for line in summary.truth_path.read_text().splitlines()]
    assert len(truth) == summary.truth_records > 0
    assert {"device_id", "kind", "start_s", "end_s", "what", "detail"} == set(truth[0])
    assert summary.truth_events_path is not None
    labelled = load_truth_events(summary.truth_events_path)
    assert len(labelled) == summary.truth_events > 0
    assert {e.label for e in labelled} >= {"fault:clock_skew", "fault:stuck", "fault:dropout"}


def test_cli_fleet_scenarios_and_run(tmp_path: Path) -> None:
    runner = CliRunner()
    csv_path, yaml_path = tmp_path / "fleet.csv", tmp_path / "fleet.yaml"
    result = runner.invoke(app, ["fleet", "--district", "yuhuan", "--count", "12", "--seed", "3",
                                 "--kind", "garbage", "--out", str(csv_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(load_registry(csv_path)) == 12
    result = runner.invoke(app, ["fleet", "--count", "9", "--out", str(yaml_path)])
    assert result.exit_code == 0, result.output
    assert len(load_registry(yaml_path)) == 9
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    assert "typhoon_rainstorm" in result.output
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--fleet", str(csv_path), "--scenario", "missed_collection",
                                 "--duration", "2h", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "readings.jsonl").stat().st_size > 0


@pytest.mark.parametrize(
    "args",
    [
        ["fleet", "--district", "atlantis", "--out", "x.csv"],
        ["fleet", "--out", "fleet.txt"],
        ["run", "--fleet", "missing.csv", "--scenario", "normal_day", "--out", "o"],
        ["run", "--fleet", "FLEET", "--scenario", "no_such", "--out", "o"],
        ["run", "--fleet", "FLEET", "--scenario", "normal_day", "--duration", "6x", "--out", "o"],
        ["run", "--fleet", "FLEET", "--scenario", "normal_day", "--format", "xml", "--out", "o"],
        ["run", "--fleet", "FLEET", "--scenario", "normal_day", "--out", "FLEET"],
        ["run", "--fleet", "FLEET", "--scenario", "normal_day", "--cache-dir", "F", "--out", "o"],
        ["fleet", "--out", "missing/x.csv"],
        ["run", "--fleet", "ATLANTIS", "--scenario", "normal_day", "--out", "o"],
        ["run", "--fleet", "EMPTY", "--scenario", "normal_day", "--out", "o"],
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    fleet = tmp_path / "fleet.csv"
    CliRunner().invoke(app, ["fleet", "--count", "3", "--kind", "toilet", "--out", str(fleet)])
    paths = {
        "FLEET": str(fleet),
        "F": str(fleet),
        "x.csv": str(tmp_path / "x.csv"),
        "o": str(tmp_path / "o"),
        "fleet.txt": str(tmp_path / "fleet.txt"),
        "missing.csv": str(tmp_path / "missing.csv"),
        "missing/x.csv": str(tmp_path / "missing" / "x.csv"),
    }
    atlantis = tmp_path / "atlantis.csv"  # a fleet file whose device is in no known district
    atlantis.write_text(
        "device_id,kind,district,lat,lon,expected_interval_s\n"
        "dr-xx-000001,drain,atlantis,28.6,121.4,60\n"
    )
    paths["ATLANTIS"] = str(atlantis)
    empty = tmp_path / "empty.csv"
    empty.write_text("device_id,kind,district,lat,lon,expected_interval_s\n")
    paths["EMPTY"] = str(empty)
    args = [paths.get(a, a) for a in args]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error" in result.output.lower()
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


def test_cli_score_refuses_a_misspelt_label_and_names_a_missing_file(tmp_path: Path) -> None:
    truth, alerts = tmp_path / "truth_events.jsonl", tmp_path / "alerts.jsonl"
    truth.write_text("")
    alerts.write_text(json.dumps({"device_id": "dr-1", "at_s": START_S, "tier": "red"}) + "\n")
    base = ["score", "--truth", str(truth), "--alerts", str(alerts)]
    result = CliRunner().invoke(app, [*base, "--label", "overflw"])
    assert result.exit_code == 2
    assert "--label 'overflw': not a ground-truth label" in result.output
    for label in ("overflow", "fault:stuck"):  # known labels score, even with no events
        assert CliRunner().invoke(app, [*base, "--label", label]).exit_code == 0
    result = CliRunner().invoke(app, [*base, "--label", "fire", "--network", str(tmp_path)])
    assert result.exit_code == 2
    assert f"--network {tmp_path}: not a file" in result.output
    alerts.unlink()
    result = CliRunner().invoke(app, [*base, "--label", "fire"])
    assert result.exit_code == 2
    assert f"--alerts {alerts}: no such file" in result.output


def test_paced_run_waits_for_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(START_S - 120)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    fleet = make_fleet("xianju", DeviceKind.TOILET, 3, 1)
    run_to_files(fleet, load_scenario("normal_day"), seed=1, start_s=START_S, duration_s=300,
                 out_dir=tmp_path, clock=clock, sleep=sleep)  # fmt: skip
    assert sum(waited) == pytest.approx(120 + 300)
    assert clock.now_s() == pytest.approx(START_S + 300)


def test_cli_scores_alerts_against_a_run(tmp_path: Path) -> None:
    truth = tmp_path / "truth_events.jsonl"
    event = {"label": "overflow", "unit": "jj-J001", "device_ids": ["dr-jj-000001"],
             "district": "jiaojiang", "kind": "drain", "onset_s": START_S + 3600,
             "end_s": START_S + 7200, "peak": 0.1, "peak_at_s": START_S + 4000,
             "volume_m3": 3.0, "detail": ""}  # fmt: skip
    truth.write_text(json.dumps(event) + "\n")
    alerts = tmp_path / "alerts.jsonl"
    rows = [{"device_id": "dr-jj-000007", "at_s": START_S + 1800, "tier": "red"},
            {"device_id": "dr-jj-000009", "at_s": START_S + 9000, "tier": "orange"}]  # fmt: skip
    alerts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    network = tmp_path / "network.json"
    network.write_text(
        json.dumps({"version": 1, "nodes": [], "devices": {"dr-jj-000007": "jj-J001"}})
    )
    args = ["score", "--truth", str(truth), "--alerts", str(alerts), "--label", "overflow",
            "--horizon", "60m", "--network", str(network)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 events, 2 warnings (1 true)" in result.output
    assert "precision 0.500, recall 1.000, median lead 30.0 min" in result.output
    assert "lead times (warned events: 1): min 30.0, p25 30.0" in result.output
    alerts.write_text('{"device_id": "dr-1", "at_s": "soon", "tier": "red"}\n')
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "alerts.jsonl:1" in result.output


def test_the_typhoon_overflows_within_the_default_duration(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    runner = CliRunner()
    made = runner.invoke(app, ["fleet", "--district", "sanmen", "--kind", "drain", "--count", "12",
                               "--nodes-per-district", "12", "--out", str(fleet)])  # fmt: skip
    assert made.exit_code == 0, made.output
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--fleet", str(fleet), "--scenario", "typhoon_rainstorm",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    truth = [json.loads(line) for line in (out / "ground_truth.jsonl").read_text().splitlines()]
    overflows = [r for r in truth if r["what"] == "overflow"]
    assert overflows, "the typhoon's point is overflow; the default run must reach it"
    assert max(r["end_s"] for r in truth) <= START_S + 24 * 3600 + 60


def _by_message_path(sim_fleet: list[Device], at_s: float, tick: int) -> list[bytes]:
    """What the per-device path (dicts, ``Telemetry``, ``encode``) gives for one tick."""
    sim = FleetSimulation(sim_fleet, load_scenario("sensor_faults"), 1, START_S)
    for t in range(tick):
        sim.read_all(START_S + t * 60)
    out = []
    for device_id, result in sim.read_all(at_s).items():
        ts = int((at_s + sim.clock_skew_s(device_id)) * 1000)
        if isinstance(result, dict) and result:
            out.append(encode(Telemetry(v=1, device_id=device_id, ts=ts, seq=tick,
                                        boot_id="sim-1", readings=dict(result))))  # fmt: skip
    return out


def test_the_fast_encoder_writes_what_the_contract_encoder_writes(tmp_path: Path) -> None:
    fleet = make_fleet("wenling", DeviceKind.TOILET, 30, 4) + make_fleet(
        "wenling", DeviceKind.GARBAGE, 30, 4
    )
    tick = 4 * 60 + 7  # inside the dropout windows: metrics left out and failed reads
    summary = run_to_files(fleet, load_scenario("sensor_faults"), seed=1, start_s=START_S,
                           duration_s=(tick + 1) * 60, out_dir=tmp_path)  # fmt: skip
    lines = summary.readings_path.read_bytes().splitlines()
    at_tick = [line for line in lines if decode(line, Telemetry).seq == tick]
    expected = _by_message_path(fleet, START_S + tick * 60, tick)
    assert sorted(at_tick) == sorted(expected)
    garbage = [
        decode(line, Telemetry) for line in at_tick if line.startswith(b'{"v":1,"device_id":"gb')
    ]
    assert any("fill_kitchen_pct" not in m.readings for m in garbage)
    assert any("fill_kitchen_pct" in m.readings for m in garbage)
    assert summary.failed_reads > 0


def test_zstd_output_holds_the_same_lines(tmp_path: Path) -> None:
    fleet = make_fleet("sanmen", DeviceKind.GARBAGE, 20, 2)
    plain = run_to_files(fleet, load_scenario("sensor_faults"), seed=1, start_s=START_S,
                         duration_s=5 * 3600, out_dir=tmp_path / "plain")  # fmt: skip
    packed = run_to_files(fleet, load_scenario("sensor_faults"), seed=1, start_s=START_S,
                          duration_s=5 * 3600, out_dir=tmp_path / "z", fmt="jsonl.zst")  # fmt: skip
    assert packed.readings_path.name == "readings.jsonl.zst"
    for a, b in ((plain.readings_path, packed.readings_path),
                 (plain.events_path, packed.events_path)):  # fmt: skip
        with b.open("rb") as handle:
            unpacked = zstandard.ZstdDecompressor().stream_reader(handle).read()
        assert unpacked == a.read_bytes()
    assert packed.readings_path.stat().st_size < plain.readings_path.stat().st_size / 4
    with pytest.raises(ValueError, match="format"):
        run_to_files(fleet, load_scenario("normal_day"), seed=1, start_s=START_S,
                     duration_s=60, out_dir=tmp_path / "bad", fmt="parquet")  # fmt: skip
    out = tmp_path / "cli"
    fleet_file = tmp_path / "fleet.csv"
    write_registry_csv(fleet, fleet_file)
    result = CliRunner().invoke(app, ["run", "--fleet", str(fleet_file), "--scenario",
                                      "normal_day", "--duration", "5m", "--format", "jsonl.zst",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "readings.jsonl.zst").stat().st_size > 0
    assert {f.value for f in OutputFormat} == set(OUTPUT_FORMATS)
