"""Two ingesters on one shared subscription store every message once; the v2 path through
influxdb-client stores the numeric readings in VictoriaMetrics."""

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
from xiuhua.services import InfluxDB, Mosquitto, VictoriaMetrics, wait_until

pytestmark = pytest.mark.integration


def test_two_ingesters_share_the_load_and_store_each_message_once(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = make_fleet(tmp_path / "fleet.csv", 40)
    services = [
        start_ingester(
            write_config(
                tmp_path / f"i{n}.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url,
                influx_db, group=f"g{influx_db}", instance=f"{influx_db}-{n}", batch_size=200,
                receive_maximum=1000, shared_subscription=True,
            )
        )
        for n in (1, 2)
    ]  # fmt: skip
    now_ms = int(time.time() * 1000)
    msgs = [
        (topic_of(d), payload(d.device_id, s, now_ms - s, s / 10)) for s in range(50) for d in fleet
    ]
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert pub.publish(msgs) == len(msgs)
        assert wait_count(influxdb, influx_db, "drain", len(msgs)) == len(msgs)
        wait_until(lambda: sum(s.counters.received for s in services) >= len(msgs), timeout_s=30)
        received = [s.counters.received for s in services]
        assert sum(received) == len(msgs)
        assert all(r > 0 for r in received)
    finally:
        pub.close()
        for service in services:
            service.stop()


def test_v2_path_stores_numeric_readings_in_victoria_metrics(
    tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics
) -> None:
    fleet = make_fleet(tmp_path / "fleet.csv", 5)
    group = f"v2{int(time.time() * 1000)}"
    config = write_config(
        tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, victoria_metrics.url, "unused",
        group=group, instance=group, batch_size=50, receive_maximum=500,
    )  # fmt: skip
    text = config.read_text().replace(
        "[influx]",
        '[influx]\napi = "v2"\norg = "xiuhua"\nbucket = "xiuhua"\ntoken = "t0k3n-unused"',
    )
    config.write_text(text)
    service = start_ingester(config)
    now_ms = int(time.time() * 1000)
    msgs = [
        (topic_of(d), payload(d.device_id, s, now_ms - 1000 * s, 1.0 + s))
        for s in range(4)
        for d in fleet
    ]
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert pub.publish(msgs) == len(msgs)
        wait_until(lambda: service.counters.written == len(msgs), timeout_s=60)

        def stored() -> list[float]:
            victoria_metrics.flush()
            series = victoria_metrics.export('{__name__="drain_level_m"}')
            return sorted(v for s in series for v in s["values"])

        wait_until(lambda: len(stored()) == len(msgs), timeout_s=60)
        assert stored() == sorted(1.0 + s for s in range(4) for _ in fleet)
    finally:
        pub.close()
        service.stop()
