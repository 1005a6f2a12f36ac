"""Tens of thousands of mutated messages (``tests.hostile``) interleaved with valid ones, through
the real Mosquitto into the real ingester process and InfluxDB: exactly the valid ones are stored,
every delivered hostile one has a reject record, none is an ``internal_error``, and the process
neither stalls nor dies."""

from __future__ import annotations

import collections
import json
import os
import random
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import topic_matches_sub
from paho.mqtt.enums import CallbackAPIVersion

from telemetry_core.registry import Device
from telemetry_core.schema import Event, Telemetry, encode
from tests.hostile import Mutator, interleave
from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    prime_plain_session,
    topic_of,
    wait_count,
    with_json_logs,
    write_config,
)
from tests.strategies import SUBSCRIBED, contract_refuses
from xiuhua.services import InfluxDB, Mosquitto, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 50
PER_DEVICE = 200
SEED = 20261201


def valid_stream(fleet: list[Device], now_ms: int) -> list[tuple[str, bytes]]:
    """Telemetry of every device, one event in twenty, sharing the device's seq numbers."""
    rng = random.Random(SEED)
    out: list[tuple[str, bytes]] = []
    base_ms = now_ms - 60_000
    for seq in range(PER_DEVICE):
        for device in fleet:
            ts = base_ms + seq * 10
            if seq % 20 == 19:
                msg: Telemetry | Event = Event(
                    v=1, device_id=device.device_id, ts=ts, seq=seq, boot_id="b1",
                    type="threshold_crossed", metric="level_m", value=rng.uniform(0, 3),
                    data={"count": rng.randint(-(2**53) + 1, 2**53 - 1), "note": "ok"},
                )  # fmt: skip
                topic = topic_of(device).replace("/telemetry", "/event")
            else:
                # Now and then a finite extreme (stored, flagged out_of_range).
                level = rng.choice([rng.uniform(0, 3), rng.uniform(-1, 1) * 1.7e308])
                msg = Telemetry(
                    v=1, device_id=device.device_id, ts=ts, seq=seq, boot_id="b1",
                    readings={"level_m": level, "battery_v": rng.uniform(3, 4)},
                )  # fmt: skip
                topic = topic_of(device)
            out.append((topic, encode(msg)))
    return out


class Recorder:
    """Counts what arrives on one filter (a QoS 1 subscriber)."""

    def __init__(self, host: str, port: int, topic_filter: str, client_id: str) -> None:
        self.count = 0
        self.subscribed = False
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.connect(host, port)
        self._client.loop_start()
        self._client.subscribe(topic_filter, qos=1)

    def _on_message(self, *_args: object) -> None:
        self.count += 1

    def _on_subscribe(self, *_args: object) -> None:
        self.subscribed = True

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def stopped_summary(log_path: Path) -> dict[str, object]:
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{") and '"ingest_stopped"' in line:
            summary: dict[str, object] = json.loads(line)
            return summary
    raise AssertionError(f"no ingest_stopped in the log:\n{log_path.read_text()[-3000:]}")


def test_a_randomised_hostile_stream_stores_exactly_the_valid_messages(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    influx_db: str,
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", DEVICES))
    config = with_json_logs(
        write_config(
            tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
            instance="hs1", batch_size=1000, receive_maximum=5000, stats_interval_s=3600.0,
            shared_subscription=False,
        )
    )  # fmt: skip
    valid = valid_stream(fleet, int(time.time() * 1000))
    mutator = Mutator(random.Random(SEED), contract_refuses)
    stream = list(interleave(valid, mutator, hostile_per_valid=2.0, rng=random.Random(SEED)))
    families = collections.Counter(family or "valid" for _, _, family in stream)
    delivered = [
        (t, family) for t, _, family in stream if any(topic_matches_sub(s, t) for s in SUBSCRIBED)
    ]
    hostile = sum(1 for _, family in delivered if family not in (None, "duplicate"))
    telemetry = sum(1 for t, _ in valid if t.endswith("/telemetry"))
    events = len(valid) - telemetry
    prime_plain_session(mosquitto.host, mosquitto.port, "xiuhua-xiuhua-ingest-hs1", SUBSCRIBED)
    dead = Recorder(mosquitto.host, mosquitto.port, "xh/v1/_deadletter/ingest", "rec-dl-hs1")
    wait_until(lambda: dead.subscribed, timeout_s=30, message="dead-letter listener")
    log_path = tmp_path / "ingest.log"
    proc = ingest_subprocess(config, log_path)
    pub = Publisher(mosquitto.host, mosquitto.port)
    started = time.monotonic()
    try:
        assert pub.publish([(t, p) for t, p, _ in stream], timeout_s=180) == len(stream)
        assert wait_count(influxdb, influx_db, "ingest_rejects", hostile, 180) == hostile
        assert wait_count(influxdb, influx_db, "drain", telemetry, 60) == telemetry
        assert wait_count(influxdb, influx_db, "device_events", events, 60) == events
        wait_until(lambda: dead.count >= hostile, timeout_s=60, message="every dead letter")
        elapsed_s = time.monotonic() - started
        assert proc.poll() is None, "the ingester died"
    finally:
        pub.close()
        dead.close()
        proc.terminate()
        proc.wait(60)
    assert proc.returncode == 0
    assert dead.count == hostile
    assert "deadletter_publish_dropped" not in log_path.read_text(encoding="utf-8")
    sums = influxdb.query("SELECT sum(seq) FROM drain", influx_db)["results"][0]["series"]
    expected_seq_sum = (
        sum(s for s in range(PER_DEVICE) if s % 20 != 19) * DEVICES
    )  # every valid reading, once
    assert sums[0]["values"][0][1] == expected_seq_sum
    by_reason = influxdb.query(
        'SELECT count("detail") FROM ingest_rejects GROUP BY reason', influx_db
    )["results"][0]["series"]
    reasons = {s["tags"]["reason"]: s["values"][0][1] for s in by_reason}
    assert "internal_error" not in reasons, reasons
    assert sum(reasons.values()) == hostile
    summary = stopped_summary(log_path)
    assert summary["received"] == len(delivered)
    assert summary["rejected"] == hostile
    assert summary["written"] == len(delivered) - hostile
    assert summary["duplicates"] == families["duplicate"]
    report = os.environ.get("XIUHUA_HOSTILE_REPORT")
    if report:  # what this run covered, for the record (make fuzz writes one)
        covered = {
            "messages": len(stream),
            "delivered": len(delivered),
            "hostile": hostile,
            "families": dict(families),
            "reasons": reasons,
            "seconds": round(elapsed_s, 1),
        }
        Path(report).write_text(json.dumps(covered, indent=2, sort_keys=True), encoding="utf-8")
