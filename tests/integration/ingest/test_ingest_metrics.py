"""The Prometheus endpoint of a running ingester: counters move as messages are written or
refused."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.ingest.kit import (
    Publisher,
    make_fleet,
    payload,
    start_ingester,
    topic_of,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto, free_port, wait_until

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as ``{(sample name, sorted labels): value}``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_endpoint_counts_written_and_rejected(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", 5))
    port = free_port()
    config = write_config(
        tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
        group=f"m{influx_db}", instance=f"m{influx_db}", batch_size=50, receive_maximum=500,
        metrics_port=port,
    )  # fmt: skip
    service = start_ingester(config)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        before = scrape(port)
        assert value(before, "xiuhua_ingest_written_total") == 0
        assert value(before, "xiuhua_ingest_rejected_total", reason="malformed_json") == 0
        now_ms = int(time.time() * 1000)
        good = [
            (topic_of(d), payload(d.device_id, seq, now_ms - 100 + seq, 1.0))
            for d in fleet
            for seq in range(4)
        ]
        stranger = "xh/v1/jiaojiang/drain/drain-99999/telemetry"
        bad = [(topic_of(fleet[0]), b"{oops")] * 3 + [
            (stranger, payload("drain-99999", 0, now_ms, 1.0))
        ] * 2
        assert pub.publish(good + bad) == len(good) + len(bad)

        wait_until(
            lambda: value(scrape(port), "xiuhua_ingest_written_total") == len(good), timeout_s=60
        )
        wait_until(
            lambda: value(scrape(port), "xiuhua_ingest_received_total") == len(good) + len(bad),
            timeout_s=60,
        )
        after = scrape(port)
        assert value(after, "xiuhua_ingest_rejected_total", reason="malformed_json") == 3
        assert value(after, "xiuhua_ingest_rejected_total", reason="unknown_device") == 2
        assert value(after, "xiuhua_ingest_rejected_total", reason="schema") == 0
        assert value(after, "xiuhua_ingest_batch_latency_seconds_count") >= 1
        assert value(after, "xiuhua_ingest_dropped_total") == 0
        assert value(after, "xiuhua_ingest_broker_dropped_total") == 0
        assert influxdb.count("drain", influx_db) == len(good)
    finally:
        pub.close()
        service.stop()
