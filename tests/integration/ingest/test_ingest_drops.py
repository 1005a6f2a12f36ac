"""Loss at the broker is never silent: messages Mosquitto drops at its queue bound for an offline
ingester are counted from ``$SYS``, logged as an error and stored in ``ingest_stats``; every
published message is either stored or counted as dropped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import MosquittoFactory
from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    payload,
    prime_session,
    topic_of,
    with_json_logs,
    write_config,
)
from xiuhua.services import InfluxDB, wait_until

pytestmark = pytest.mark.integration

N = 600
QUEUE_BOUND_BYTES = 20_000
"""About 150 of our ~130-byte messages: the rest of N is dropped while the ingester is away."""


def stats(influx: InfluxDB, db: str) -> dict[str, Any]:
    q = ('SELECT max("broker_dropped_total") AS total, sum("broker_dropped") AS seen '
         "FROM ingest_stats")  # fmt: skip
    series = influx.query(q, db)["results"][0].get("series", [])
    return dict(zip(series[0]["columns"], series[0]["values"][0], strict=True)) if series else {}


def logged(path: Path, event: str) -> list[dict[str, Any]]:
    """JSON log lines of ``event`` in the ingester's stderr."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == event]


def test_broker_drops_are_counted_logged_and_stored(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    broker = mosquitto_factory(max_queued_bytes=QUEUE_BOUND_BYTES)
    fleet = list(make_fleet(tmp_path / "fleet.csv", 10))
    config = with_json_logs(write_config(
        tmp_path / "i.toml", tmp_path / "fleet.csv", broker.url, influxdb.url, influx_db,
        instance="d1", batch_size=100, receive_maximum=1000,
    ))  # fmt: skip
    # The ingester's persistent session exists but the ingester is not running: the broker
    # queues for it up to its bound and drops the rest.
    prime_session(broker.host, broker.port, "xiuhua-xiuhua-ingest-d1", "xiuhua-ingest")
    now_ms = int(time.time() * 1000)
    msgs = [
        (topic_of(fleet[i % 10]), payload(fleet[i % 10].device_id, i // 10, now_ms - N + i, 1.5))
        for i in range(N)
    ]
    pub = Publisher(broker.host, broker.port)
    try:
        assert pub.publish(msgs) == N  # the broker took every one of them
    finally:
        pub.close()
    log_path = tmp_path / "ingest.log"
    proc = ingest_subprocess(config, log_path)
    try:
        # Mosquitto publishes its counter every sys_interval (10 s by default).
        wait_until(lambda: (stats(influxdb, influx_db).get("total") or 0) > 0, timeout_s=60)
        dropped = stats(influxdb, influx_db)["total"]
        assert 0 < dropped < N
        wait_until(lambda: influxdb.count("drain", influx_db) >= N - dropped, timeout_s=60)
        assert influxdb.count("drain", influx_db) == N - dropped  # stored + dropped = published
        wait_until(lambda: stats(influxdb, influx_db)["seen"] == dropped, timeout_s=30)
        errors = logged(log_path, "broker_dropped_messages")
        assert [(e["level"], e["dropped"], e["broker_total"]) for e in errors] == [
            ("error", dropped, dropped)
        ]
    finally:
        proc.terminate()
        proc.wait(30)
