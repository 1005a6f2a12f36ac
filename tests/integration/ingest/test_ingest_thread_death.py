"""A worker thread of the real ingester process dies: the process exits 70 with ``thread_died``
naming the thread, nothing was acknowledged, and the restarted ingester stores the message."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telemetry_core.threads import THREAD_DIED_EXIT_CODE
from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    payload,
    prime_plain_session,
    topic_of,
    wait_count,
    with_json_logs,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def log_events(path: Path) -> list[dict[str, object]]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_dead_writer_thread_ends_the_process_and_a_restart_stores_the_message(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    (device, *_rest) = make_fleet(tmp_path / "fleet.csv", 3)
    config = with_json_logs(
        write_config(
            tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
            instance="td1", shared_subscription=False, watch_broker_drops=False,
        )
    )  # fmt: skip
    prime_plain_session(
        mosquitto.host, mosquitto.port, "xiuhua-xiuhua-ingest-td1", ["xh/v1/+/+/+/telemetry"]
    )
    now_ms = int(time.time() * 1000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    log_path = tmp_path / "buggy.log"
    child = [sys.executable, "-m", "tests.integration.ingest.ingest_child", "--config", str(config)]
    with log_path.open("ab") as log:
        buggy = subprocess.Popen(child, cwd=REPO, stdout=log, stderr=log)
    try:
        msgs = [(topic_of(device), payload(device.device_id, 1, now_ms, 666.0))]
        assert pub.publish(msgs) == 1
        code = buggy.wait(60)
    finally:
        if buggy.poll() is None:
            buggy.kill()
            buggy.wait(30)
    died = [e for e in log_events(log_path) if e.get("event") == "thread_died"]
    assert code == THREAD_DIED_EXIT_CODE, log_path.read_text()[-3000:]
    assert [(e["thread"], e["error"], e["level"]) for e in died] == [
        ("ingest-writer", "RuntimeError", "critical")
    ]
    assert influxdb.count("drain", influx_db) == 0
    # The supervisor restarts it (here: the test); the unacknowledged message comes back.
    restarted = ingest_subprocess(config, tmp_path / "ingest.log")
    try:
        assert wait_count(influxdb, influx_db, "drain", 1) == 1
    finally:
        restarted.terminate()
        restarted.wait(30)
        pub.close()
