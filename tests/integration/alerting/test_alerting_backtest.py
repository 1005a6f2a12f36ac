"""``xiuhua alerting check`` and ``backtest``: rules validated with a message naming the place;
history replayed from a simulator directory and from InfluxDB (stored by the real ingester)
through the same engine code, giving the same transitions as the live service would."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from alerting import Engine, load_rules
from alerting._backtest import replay, sim_dir_items
from alerting._backtest_influx import InfluxHistory
from telemetry_core.registry import load_registry
from telemetry_core.settings import InfluxSettings
from tests.integration.alerting.kit import MIN_MS, RULES, make_fleet, replayed_ids, series
from tests.integration.ingest.kit import Publisher, start_ingester, wait_count
from tests.integration.ingest.kit import write_config as ingest_config
from xiuhua.commands.alerting import app
from xiuhua.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration
DEV = "dr-jj-000000"


def _stream(t0: int) -> list[tuple[str, bytes]]:
    fills = [0.5, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 1.3, 0.5, 0.5]
    return series(DEV, t0, fills) + series("dr-hy-000001", t0 + 7, [0.5, 1.4, 1.4, 0.2])


def test_check_accepts_the_defaults_and_names_file_rule_and_field_of_a_bad_one(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["check", "--rules", str(RULES)])
    assert good.exit_code == 0, good.output
    assert "1 rules in 1 files: OK" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.read_text().replace("metric: fill_ratio", "metric: fill_ration"))
    result = runner.invoke(app, ["check", "--rules", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output
    assert "test.fill" in result.output
    assert "fill_ration" in result.output


def test_backtest_of_a_sim_dir_reports_alerts_and_scores_beside_the_baseline(
    tmp_path: Path,
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    run = tmp_path / "run"
    run.mkdir()
    t0 = int(time.time() * 1000) - 60 * MIN_MS
    stream = _stream(t0)
    (run / "readings.jsonl").write_bytes(b"\n".join(p for _, p in stream) + b"\n")
    onset_s, end_s = (t0 + 7 * MIN_MS) / 1000, (t0 + 8 * MIN_MS) / 1000
    truth = {"label": "surcharge", "unit": DEV, "device_ids": [DEV], "district": "jiaojiang",
             "kind": "drain", "onset_s": onset_s, "end_s": end_s, "peak": 1.3,
             "peak_at_s": onset_s, "volume_m3": None, "detail": ""}  # fmt: skip
    (run / "truth_events.jsonl").write_bytes(msgspec.json.encode(truth) + b"\n")
    args = ["backtest", "--rules", str(RULES), "--sim-dir", str(run), "--fleet", str(fleet),
            "--label", "test.fill=surcharge"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert rows["test.fill"][1:4] == ["2", "0", "red"]  # two alerts, no flaps, red at most
    assert rows["test.fill"][-1] == "surcharge"
    # Two red warnings, one on the surcharged manhole: precision 0.5, its one event warned.
    assert rows["test.fill"][4:6] == ["0.500", "1.000"]
    assert "baseline.fill70" in rows
    assert "replayed 14 messages" in result.output


def test_backtest_from_influxdb_replays_what_the_ingester_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = tmp_path / "fleet.csv"
    registry = make_fleet(fleet)
    ingester = start_ingester(
        ingest_config(tmp_path / "ingest.toml", fleet, mosquitto.url, influxdb.url, influx_db,
                      watch_broker_drops=False)
    )  # fmt: skip
    t0 = int(time.time() * 1000) - 60 * MIN_MS
    stream = _stream(t0)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert publisher.publish(stream) == len(stream)
        assert wait_count(influxdb, influx_db, "drain", len(stream)) == len(stream)
    finally:
        publisher.close()
        ingester.stop()
    history = InfluxHistory(InfluxSettings(url=influxdb.url, database=influx_db), registry)
    try:
        items = list(history.items(t0 - MIN_MS, t0 + 30 * MIN_MS, window_s=300.0))
    finally:
        history.close()
    assert len(items) == len(stream)
    engine = Engine(load_rules(RULES), load_registry(fleet))
    got = {t.transition_id for t in replay([engine], items).transitions[0]}
    assert got == replayed_ids(stream, fleet)
    assert len(got) >= 4
    run = tmp_path / "run"
    run.mkdir()
    (run / "readings.jsonl").write_bytes(b"\n".join(p for _, p in stream) + b"\n")
    assert len(list(sim_dir_items(run, registry))) == len(stream)
