"""A worker thread of the real ingester process dies: the process exits 70 with ``thread_died``
naming the thread, nothing was acknowledged, and the restarted ingester stores the message."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    payload,
    topic_of,
    wait_count,
    with_json_logs,
    write_config,
)
from telemetry_core.threads import THREAD_DIED_EXIT_CODE
from xiuhua.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def prime_plain_session(broker: Mosquitto, client_id: str) -> None:
    """The ingester's persistent session and subscription, so the broker keeps what it misses."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("xh/v1/+/+/+/telemetry", qos=1)
    assert done.wait(30), "the broker did not confirm the subscription"
    client.disconnect()
    client.loop_stop()


def log_events(path: Path) -> list[dict[str, object]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


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
    prime_plain_session(mosquitto, "xiuhua-xiuhua-ingest-td1")
    now_ms = int(time.time() * 1000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    log_path = tmp_path / "buggy.log"
    with log_path.open("ab") as log:
        buggy = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ingest.ingest_child", "--config", str(config)],
            cwd=REPO, stdout=log, stderr=log,
        )  # fmt: skip
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
