"""N messages in, exactly N readings stored, values read back with InfluxQL; stats are written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.ingest.kit import (
    Publisher,
    make_fleet,
    payload,
    start_ingester,
    topic_of,
    wait_count,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto, wait_until

pytestmark = pytest.mark.integration


N_DEVICES = 50
PER_DEVICE = 40


def test_every_message_is_stored_once_with_its_value(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = make_fleet(tmp_path / "fleet.csv", N_DEVICES)
    config = write_config(
        tmp_path / "ingest.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
        group=f"g{influx_db}", instance=f"i{influx_db}", batch_size=500, receive_maximum=5000,
    )  # fmt: skip
    service = start_ingester(config)
    now_ms = int(time.time() * 1000)
    sent = {}
    messages = []
    for d_index, device in enumerate(fleet):
        for seq in range(PER_DEVICE):
            level = round(d_index * 0.01 + seq * 0.001, 6)
            sent[(device.device_id, now_ms - seq)] = level
            messages.append((topic_of(device), payload(device.device_id, seq, now_ms - seq, level)))
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert pub.publish(messages) == len(messages)
        total = N_DEVICES * PER_DEVICE
        assert wait_count(influxdb, influx_db, "drain", total) == total
        body = influxdb.query(
            "SELECT level_m, device_id, district FROM drain", influx_db, epoch="ms"
        )
        rows = body["results"][0]["series"][0]["values"]
        stored = {(dev, t): v for t, v, dev, _ in rows}
        assert stored == sent
        districts = {(dev, dist) for _, _, dev, dist in rows}
        assert districts == {(d.device_id, d.district) for d in fleet}
        wait_until(lambda: influxdb.count("ingest_stats", influx_db) > 0, timeout_s=30)
        wait_until(lambda: service.counters.written == total, timeout_s=30)
        assert service.counters.rejected == 0
    finally:
        pub.close()
        service.stop()
