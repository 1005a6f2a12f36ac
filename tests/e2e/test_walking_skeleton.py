"""The walking skeleton: simulated devices → edge gateway → Mosquitto → ingester → InfluxDB.

Every telemetry message that crossed the broker is read back from InfluxDB with InfluxQL,
exactly once, with the registry's tags and the device's values. The edge gateway and the
ingester run as the same ``xiuhua`` commands an operator runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim import make_fleet
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from tests.helpers import InfluxDB, Mosquitto, wait_until
from xiuhua.demo import ChildProcess
from xiuhua.watch import TelemetryWatch

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

KINDS = ("drain", "toilet", "garbage", "rain")


@pytest.fixture
def capture(mosquitto: Mosquitto) -> Iterator[TelemetryWatch]:
    watcher = TelemetryWatch(mosquitto.host, mosquitto.port)
    yield watcher
    watcher.close()


def _configs(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, db: str) -> list[Path]:
    fleet = tmp_path / "fleet.csv"
    devices: list[Device] = []
    for kind in DeviceKind:
        devices += make_fleet("jiaojiang", kind, 3, seed=11)
    write_registry_csv(devices, fleet)
    common = f'[mqtt]\nurl = "{mosquitto.url}"\n[registry]\npath = "{fleet}"\n'
    ingest = tmp_path / "ingest.toml"
    ingest.write_text(
        common + f'[influx]\nurl = "{influxdb.url}"\ndatabase = "{db}"\n'
        f'[ingest]\ninstance = "skeleton-{db}"\ngroup = "skeleton-{db}"\n'
        "max_future_s = 7200\n",
        encoding="utf-8",
    )
    edge = tmp_path / "edge.toml"
    edge.write_text(
        common + f'[edge]\ngateway_id = "gw-{db.replace("_", "-")}"\nsim_speed = 60.0\n'
        f'state_dir = "{tmp_path / "edge-state"}"\n',
        encoding="utf-8",
    )
    return [ingest, edge]


def _stored(influxdb: InfluxDB, db: str) -> dict[tuple[str, int], dict[str, Any]]:
    points: dict[tuple[str, int], dict[str, Any]] = {}
    for kind in KINDS:
        query = f'SELECT * FROM "{kind}" GROUP BY *'  # noqa: S608 - a fixed kind name
        body = influxdb.query(query, db, epoch="ms")
        for series in body["results"][0].get("series", []):
            columns = series["columns"]
            for row in series["values"]:
                point = dict(zip(columns, row, strict=True))
                point.update(series["tags"], measurement=kind)
                points[(series["tags"]["device_id"], point["time"])] = point
    return points


def test_every_reading_crosses_once_with_its_tags_and_values(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    influx_db: str,
    capture: TelemetryWatch,
) -> None:
    ingest_cfg, edge_cfg = _configs(tmp_path, mosquitto, influxdb, influx_db)
    xiuhua = [sys.executable, "-m", "xiuhua"]
    ingest = ChildProcess("ingest", [*xiuhua, "ingest", "--config", str(ingest_cfg)],
                          tmp_path / "ingest.log")  # fmt: skip
    edge = ChildProcess("edge", [*xiuhua, "edge", "--config", str(edge_cfg)],
                        tmp_path / "edge.log")  # fmt: skip
    try:
        wait_until(lambda: capture.count() >= 40, timeout_s=120, message="40 readings published")
        assert edge.stop() == 0, edge.tail()
        expected = capture.count()
        wait_until(
            lambda: len(_stored(influxdb, influx_db)) >= expected,
            timeout_s=60,
            message=f"all {expected} readings stored",
        )
    finally:
        edge.stop()
        assert ingest.stop() == 0, ingest.tail()
    stored = _stored(influxdb, influx_db)
    published = capture.snapshot()
    assert capture.invalid == 0
    assert set(stored) == set(published)
    for key, (topic, telemetry) in published.items():
        point = stored[key]
        assert point["district"] == topic.district == "jiaojiang"
        assert point["measurement"] == topic.kind.value
        assert point["seq"] == telemetry.seq
        for metric, value in telemetry.readings.items():
            assert point[metric] == pytest.approx(value, rel=1e-12), (key, metric)
    assert {p["measurement"] for p in stored.values()} == set(KINDS)
