"""A hostile corpus interleaved with valid messages: each bad one refused with its reason, on the
dead-letter topic and in ``ingest_rejects``; every valid one stored."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

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


T = "xh/v1/jiaojiang/drain/drain-00000/telemetry"


def corpus(now_ms: int) -> list[tuple[str, bytes, str]]:
    def p(**kw: object) -> bytes:
        base: dict[str, object] = {"v": 1, "device_id": "drain-00000", "ts": now_ms, "seq": 1,
                                   "boot_id": "b1", "readings": {"level_m": 1.0}}  # fmt: skip
        base.update(kw)
        return json.dumps(base).encode()

    return [
        (T, b"{not json", "malformed_json"),
        (T, b"\xff\xfe\x00", "not_utf8"),
        (T, p(seq="x"), "schema"),
        (T, p(readings=None), "schema"),
        (T, json.dumps({"v": 1}).encode(), "schema"),
        (T, p().replace(b"1.0}", b"NaN}"), "non_finite"),
        (T, p().replace(b"1.0}", b"1e999}"), "non_finite"),
        (T, b"[" * 20_000, "oversized"),
        (T, p(ts=now_ms + 3_600_000), "ts_future"),
        (T, p(ts=now_ms - 8 * 86_400_000), "ts_past"),
        (
            "xh/v1/jiaojiang/drain/drain-99999/telemetry",
            p(device_id="drain-99999"),
            "unknown_device",
        ),
        ("xh/v1/huangyan/drain/drain-00000/telemetry", p(), "topic_mismatch"),
        (T, p(device_id="drain-00001"), "topic_mismatch"),
        ("xh/v1/jiao jiang,x=1/drain/drain-00000/telemetry", p(), "bad_topic"),
        (T, p(device_id='drain-00000,district=x y="1"'), "schema"),
        (T, p(readings={'level_m,x=1 y="2"': 1.0}), "schema"),
        (T, p(readings={"nh3_mgm3": 1.0}), "unknown_metric"),
        (T, p(v=9), "unsupported_version"),
    ]


def test_hostile_corpus_is_refused_with_reasons_and_valid_messages_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", 10))
    config = write_config(
        tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
        group=f"h{influx_db}", instance=f"h{influx_db}", batch_size=50, receive_maximum=500,
        deadletter_topic=f"xh/v1/_deadletter/{influx_db}",
    )  # fmt: skip
    dead: list[dict[str, str]] = []
    sub_ready = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: dead.append(json.loads(m.payload))
    listener.on_subscribe = lambda *_a: sub_ready.set()
    listener.connect(mosquitto.host, mosquitto.port)
    listener.loop_start()
    listener.subscribe(f"xh/v1/_deadletter/{influx_db}", qos=1)
    assert sub_ready.wait(30)
    service = start_ingester(config)
    now_ms = int(time.time() * 1000)
    bad = corpus(now_ms)
    msgs: list[tuple[str, bytes]] = []
    valid = 0
    for round_ in range(3):
        for topic, body, _ in bad:
            msgs.append((topic, body))
            for device in fleet[:3]:
                msgs.append(
                    (topic_of(device), payload(device.device_id, valid, now_ms - valid, 2.5))
                )
                valid += 1
        msgs.append(
            (T, payload("drain-00000", 10_000 + round_, now_ms + 1 + round_, 99.0))
        )  # flagged, kept
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert pub.publish(msgs) == len(msgs)
        expected_rejects = 3 * len(bad)
        assert wait_count(influxdb, influx_db, "drain", valid + 3) == valid + 3
        assert (
            wait_count(influxdb, influx_db, "ingest_rejects", expected_rejects) == expected_rejects
        )
        wait_until(lambda: len(dead) >= expected_rejects, timeout_s=30)
        result = influxdb.query(
            'SELECT count("detail") FROM ingest_rejects GROUP BY reason', influx_db
        )
        stored = {s["tags"]["reason"]: s["values"][0][1] for s in result["results"][0]["series"]}
        wanted: dict[str, int] = {}
        for _, _, reason in bad:
            wanted[reason] = wanted.get(reason, 0) + 3
        assert stored == wanted
        assert sorted(d["reason"] for d in dead) == sorted(r for _, _, r in bad for _ in range(3))
        flagged = influxdb.query(
            "SELECT level_m, level_m__q FROM drain WHERE level_m > 50", influx_db
        )["results"][0]["series"][0]["values"]
        assert [(row[1], row[2]) for row in flagged] == [(99.0, "out_of_range")] * 3
        assert service.counters.rejected == expected_rejects
    finally:
        pub.close()
        listener.disconnect()
        listener.loop_stop()
        service.stop()
