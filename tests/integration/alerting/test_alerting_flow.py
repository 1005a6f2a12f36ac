"""The alerting service against a real broker and, through the real ingester, InfluxDB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    reading,
    series,
    start_service,
    tiers,
    topic_of,
    write_config,
)
from tests.integration.ingest.kit import start_ingester
from tests.integration.ingest.kit import write_config as ingest_config
from xiuhua.services import InfluxDB, Mosquitto, wait_until

pytestmark = pytest.mark.integration
DEV = "dr-jj-000000"


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_a_crossing_is_published_at_once_and_lands_in_influxdb_through_the_ingester(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    collector = Collector(mosquitto.host, mosquitto.port)
    ingester = start_ingester(
        ingest_config(tmp_path / "ingest.toml", fleet, mosquitto.url, influxdb.url, influx_db,
                      watch_broker_drops=False)
    )  # fmt: skip
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, tmp_path / "s.db")
    service = start_service(config)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        t0 = _now_ms() - 30 * MIN_MS
        publisher.publish(series(DEV, t0, [0.5, 1.2]))
        [transition] = collector.wait_for(1)
        assert (transition.tier_from, transition.tier_to, transition.ts) == (
            "none",
            "red",
            t0 + MIN_MS,
        )
        assert transition.notify
        assert not transition.historical
        wait_until(lambda: influxdb.count("alert_events", influx_db) >= 1, timeout_s=60)
        rows = influxdb.query("SELECT last(tier), tier_rank FROM alert_state GROUP BY device_id",
                              influx_db)["results"][0]["series"]  # fmt: skip
        assert [(r["tags"]["device_id"], r["values"][0][1]) for r in rows] == [(DEV, "red")]
        wait_until(lambda: influxdb.count("alerting_stats", influx_db) >= 1, timeout_s=60)
    finally:
        publisher.close()
        service.stop()
        ingester.stop()
        collector.close()


def test_duplicates_and_readings_a_millisecond_apart_open_one_alert_and_backfill_notifies_nobody(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    collector = Collector(mosquitto.host, mosquitto.port)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, tmp_path / "s.db")
    service = start_service(config)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        t0 = _now_ms() - 30 * MIN_MS
        crossing = reading(DEV, 1, t0, 1.5)
        publisher.publish([(topic_of(DEV), crossing)] * 3)  # the same message three times
        publisher.publish([(topic_of(DEV), reading(DEV, 2, t0 + 1, 1.6))])  # 1 ms later
        backfill = "dr-jj-000001"
        old = t0 - 24 * 60 * MIN_MS
        publisher.publish([(topic_of(backfill), reading(backfill, i, old + i * MIN_MS, f, True))
                           for i, f in enumerate([0.5, 1.4, 0.5])])  # fmt: skip
        got = collector.wait_for(3)
        assert tiers(got, DEV) == [("none", "red")]
        replayed = [t for t in got if t.device_id == backfill]
        assert tiers(replayed) == [("none", "red"), ("red", "none")]
        assert all(t.historical and not t.notify for t in replayed)
        assert service.counters.evaluated == 7
    finally:
        publisher.close()
        service.stop()
        collector.close()
