"""The ACL that ``xiuhua edge acl --cloud-user`` prints lets the real ingester do all it does:
dead letters reach their MQTT topic and broker drops are watched from ``$SYS``. Under an ACL
that refuses the dead letter, the ingester says so (``publish_denied``) instead of failing
silently. (Mosquitto 2.0 grants a SUBSCRIBE whatever the ACL and checks read access on each
message, so a missing ``$SYS`` read shows only as drops never seen: the first test catches it.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry_core.registry import Device
from tests.helpers import MosquittoFactory
from tests.integration.ingest.kit import (
    ingest_subprocess,
    make_fleet,
    payload,
    topic_of,
    with_json_logs,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto, wait_until

pytestmark = pytest.mark.integration

CLOUD, CLOUD_PASSWORD = "cloud-svc", "cl0ud-Pa55-for-tests"
DEVICE_PASSWORD = "d3vice-Pa55-for-tests"  # noqa: S105 - a private test broker's
DEADLETTER_TOPIC = "xh/v1/_deadletter/ingest"
QUEUE_BOUND_BYTES = 4_000
"""About 30 of our messages: the offline slow subscriber's queue overflows and the broker counts
drops, while the online ingester never queues (GOOD fits in its in-flight window of 100)."""
GOOD = 60


def _printed_acl() -> str:
    """What an operator gets from the real command."""
    result = subprocess.run(
        [sys.executable, "-m", "xiuhua", "edge", "acl", "--cloud-user", CLOUD],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def _broker(factory: MosquittoFactory, device_ids: list[str], acl: str) -> Mosquitto:
    users = {CLOUD: CLOUD_PASSWORD} | dict.fromkeys(device_ids, DEVICE_PASSWORD)
    return factory(users=users, acl=acl, max_queued_bytes=QUEUE_BOUND_BYTES)


def _client(user: str, password: str, client_id: str = "") -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    return client


class DeadLetterWatch:
    """A cloud-user subscriber collecting dead letters."""

    def __init__(self, broker: Mosquitto) -> None:
        self.received: list[dict[str, Any]] = []
        self._subscribed = threading.Event()
        self._client = _client(CLOUD, CLOUD_PASSWORD)
        self._client.on_message = lambda _c, _u, msg: self.received.append(json.loads(msg.payload))
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.on_connect = lambda c, *_args: c.subscribe("xh/v1/_deadletter/#", qos=1)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(30), "the dead-letter watch did not subscribe"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _offline_slow_subscriber(broker: Mosquitto) -> None:
    """A persistent cloud session that subscribes to telemetry and goes away: the broker queues
    for it up to its bound and drops (and counts) the rest."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client = _client(CLOUD, CLOUD_PASSWORD, client_id="slow-dashboard")
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("xh/v1/+/+/+/telemetry", qos=1)
    assert done.wait(30)
    client.disconnect()
    client.loop_stop()


def _config(tmp_path: Path, broker: Mosquitto, influxdb: InfluxDB, db: str) -> Path:
    path = write_config(tmp_path / "i.toml", tmp_path / "fleet.csv", broker.url, influxdb.url,
                        db, instance="acl1")  # fmt: skip
    text = path.read_text(encoding="utf-8").replace(
        f'url = "{broker.url}"',
        f'url = "{broker.url}"\nusername = "{CLOUD}"\npassword = "{CLOUD_PASSWORD}"',
        1,
    )
    path.write_text(text, encoding="utf-8")
    return with_json_logs(path)


def _logged(path: Path, event: str) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == event]


def _publish_as_device(broker: Mosquitto, device_id: str, messages: list[tuple[str, bytes]]) -> int:
    """Publish at QoS 1 logged in as the device; how many the broker acknowledged."""
    client = _client(device_id, DEVICE_PASSWORD)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(30)
        return sum(1 for info in infos if info.is_published())
    finally:
        client.disconnect()
        client.loop_stop()


def _stored(influx: InfluxDB, db: str, device_id: str) -> int:
    q = f'SELECT count("seq") FROM "drain" WHERE "device_id" = \'{device_id}\''  # noqa: S608
    series = influx.query(q, db)["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def _wait_subscribed(
    broker: Mosquitto, probe: Device, influx: InfluxDB, db: str, proc: subprocess.Popen[bytes]
) -> None:
    """Until the ingester stores what a probe device publishes (it has subscribed): a message
    published before its first SUBSCRIBE would be lost, not queued."""
    seq = iter(range(1_000_000))

    def stored() -> bool:
        assert proc.poll() is None, "the ingester exited"
        body = payload(probe.device_id, next(seq), int(time.time() * 1000), 0.5)
        _publish_as_device(broker, probe.device_id, [(topic_of(probe), body)])
        return _stored(influx, db, probe.device_id) > 0

    wait_until(stored, timeout_s=90, message="the ingester subscribed")


def test_the_printed_acl_lets_the_ingester_dead_letter_and_watch_drops(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", 3))
    broker = _broker(mosquitto_factory, [d.device_id for d in fleet],
                     _printed_acl())  # fmt: skip
    _offline_slow_subscriber(broker)
    watch = DeadLetterWatch(broker)
    log_path = tmp_path / "ingest.log"
    proc = ingest_subprocess(_config(tmp_path, broker, influxdb, influx_db), log_path)
    try:
        _wait_subscribed(broker, fleet[1], influxdb, influx_db, proc)
        device = fleet[0]
        now_ms = int(time.time() * 1000)
        good = [(topic_of(device), payload(device.device_id, i, now_ms - 200 + i, 1.0))
                for i in range(GOOD)]  # fmt: skip
        assert _publish_as_device(broker, device.device_id, [(topic_of(device), b"{not json")])
        assert _publish_as_device(broker, device.device_id, good) == len(good)
        wait_until(lambda: len(watch.received) == 1, timeout_s=60, message="dead letter on MQTT")
        assert watch.received[0]["topic"] == topic_of(device)
        assert influxdb.count("ingest_rejects", influx_db) == 1
        wait_until(lambda: _stored(influxdb, influx_db, device.device_id) == GOOD, timeout_s=60)
        # Mosquitto publishes its $SYS counters every 10 s: the slow subscriber's drops show.
        wait_until(lambda: bool(_logged(log_path, "broker_dropped_messages")), timeout_s=60,
                   message="broker drops seen through $SYS")  # fmt: skip
        assert _logged(log_path, "publish_denied") == []
        assert _logged(log_path, "mqtt_subscribe_refused") == []
    finally:
        watch.close()
        proc.terminate()
        proc.wait(30)


def test_a_refused_dead_letter_and_sys_subscription_are_logged(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", 3))
    too_narrow = f"user {CLOUD}\ntopic read xh/v1/#\ntopic write xh/v1/+/+/+/cmd\n"  # the old one
    broker = _broker(mosquitto_factory, [d.device_id for d in fleet],
                     _printed_acl().split(f"user {CLOUD}")[0] + too_narrow)  # fmt: skip
    log_path = tmp_path / "ingest.log"
    proc = ingest_subprocess(_config(tmp_path, broker, influxdb, influx_db), log_path)
    try:
        _wait_subscribed(broker, fleet[1], influxdb, influx_db, proc)
        device = fleet[0]
        assert _publish_as_device(broker, device.device_id, [(topic_of(device), b"{not json")])
        wait_until(lambda: bool(_logged(log_path, "publish_denied")), timeout_s=60)
        for denied in _logged(log_path, "publish_denied"):  # one, or more after a redelivery
            assert (denied["level"], denied["topic"], denied["code"]) == (
                "error",
                DEADLETTER_TOPIC,
                0x87,
            )
            assert denied["reason"] == "Not authorized"
        assert influxdb.count("ingest_rejects", influx_db) == 1  # still recorded in InfluxDB
    finally:
        proc.terminate()
        proc.wait(30)
