"""Events and statuses end to end: stored in ``device_events`` / ``device_status`` with registry
tags and stable field types, bad ones in the dead letter, sequence shared with telemetry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from telemetry_core.registry import Device
from tests.integration.ingest.kit import (
    Publisher,
    event_payload,
    make_fleet,
    payload,
    start_ingester,
    status_payload,
    wait_count,
    write_config,
)
from xiuhua.services import InfluxDB, Mosquitto, wait_until

pytestmark = pytest.mark.integration


def rows(influx: InfluxDB, q: str, db: str) -> list[dict[str, Any]]:
    """The rows of a one-series InfluxQL answer as dicts (times in ms)."""
    series = influx.query(q, db, epoch="ms")["results"][0].get("series", [])
    return [dict(zip(s["columns"], v, strict=True)) for s in series for v in s["values"]]


DEV0 = "drain-00000"
"""The device whose rows are read back (the first of ``make_fleet``)."""


def corpus(fleet: list[Device], now: int) -> dict[str, list[tuple[str, bytes]]]:
    """Good events, retained statuses, bad ones, and telemetry interleaved in DEV0's sequence."""
    out: dict[str, list[tuple[str, bytes]]] = {"events": [], "statuses": []}
    data = {"threshold": 2.2, "latched": True, "rule": "r1"}
    for d in fleet:
        topic, dev = f"xh/v1/{d.district}/drain/{d.device_id}", d.device_id
        out["events"] += [
            (f"{topic}/event", event_payload(dev, 1, now, metric="level_m", value=2.41,
                                             severity="critical", message="level above 2.2 m",
                                             data=data)),
            # Same millisecond, same tags, next seq: must not overwrite the one above.
            (f"{topic}/event", event_payload(dev, 2, now, metric="flow_m3s", value=1,
                                             severity="critical")),
            (f"{topic}/event", event_payload(dev, 4, now + 1, type="spool_dropped",
                                             data={"dropped": 12})),
        ]  # fmt: skip
        out["statuses"].append((f"{topic}/status", status_payload(
            dev, now, "online", firmware="1.4.2", config_version=7)))  # fmt: skip
    base = f"xh/v1/{fleet[0].district}/drain/{DEV0}"
    out["bad"] = [
        (f"{base}/event", event_payload(DEV0, 9, now, metric="nh3_mgm3")),
        (f"{base}/event", event_payload(fleet[1].device_id, 9, now)),
        (f"{base}/status", status_payload(DEV0, now, "sleeping")),
    ]
    out["telemetry"] = [
        (f"{base}/telemetry", payload(DEV0, seq, now + 10 + seq, 1.0)) for seq in (0, 3, 5)
    ]
    return out


def test_events_and_statuses_are_stored_with_tags_and_types(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_db: str
) -> None:
    fleet = list(make_fleet(tmp_path / "fleet.csv", 4))
    config = write_config(
        tmp_path / "i.toml", tmp_path / "fleet.csv", mosquitto.url, influxdb.url, influx_db,
        group=f"e{influx_db}", instance=f"e{influx_db}", batch_size=50, receive_maximum=500,
    )  # fmt: skip
    service = start_ingester(config)
    now = int(time.time() * 1000) - 5_000
    msgs = corpus(fleet, now)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        plain = msgs["events"] + msgs["bad"] + msgs["telemetry"]
        assert pub.publish(plain) == len(plain)
        assert pub.publish(msgs["statuses"], retain=True) == len(fleet)
        for measurement, expected in (
            ("device_events", len(msgs["events"])),
            ("device_status", len(fleet)),
            ("ingest_rejects", len(msgs["bad"])),
            ("drain", 3),
        ):
            assert wait_count(influxdb, influx_db, measurement, expected) == expected
        check_events(influxdb, influx_db, fleet, now)
        check_statuses_and_rejects(influxdb, influx_db)
        check_one_sequence(influxdb, influx_db)
    finally:
        pub.close()
        service.stop()


def check_events(influx: InfluxDB, db: str, fleet: list[Device], now: int) -> None:
    """Tags from the registry, values, and one type per field, whatever the JSON looked like."""
    q = ("SELECT * FROM device_events WHERE device_id = 'drain-00000' "
         "AND type = 'threshold_crossed' AND metric = 'level_m'")  # fmt: skip
    (row,) = rows(influx, q, db)
    assert (row["time"], row["district"], row["kind"], row["severity"]) == (
        now, fleet[0].district, "drain", "critical")  # fmt: skip
    assert (row["value"], row["message"], row["seq"]) == (2.41, "level above 2.2 m", 1)
    assert (row["data_threshold"], row["data_latched"], row["data_rule"]) == (2.2, True, "r1")
    same_ms = rows(influx, "SELECT metric FROM device_events WHERE device_id = 'drain-00000' "
                   "AND type = 'threshold_crossed'", db)  # fmt: skip
    assert sorted(r["metric"] for r in same_ms) == ["flow_m3s", "level_m"]
    dropped = rows(influx, "SELECT data_dropped FROM device_events "
                   "WHERE type = 'spool_dropped'", db)  # fmt: skip
    assert [r["data_dropped"] for r in dropped] == [12.0] * len(fleet)
    keys = influx.query("SHOW FIELD KEYS FROM device_events", db)["results"][0]["series"][0]
    assert dict(keys["values"]) == {
        "message": "string", "seq": "integer", "value": "float", "metric": "string",
        "data_threshold": "float", "data_latched": "boolean", "data_rule": "string",
        "data_dropped": "float",
    }  # fmt: skip


def check_statuses_and_rejects(influx: InfluxDB, db: str) -> None:
    """The birth of DEV0 as sent; its bad event and status in the dead letter."""
    status = rows(influx, "SELECT * FROM device_status WHERE device_id = 'drain-00000'", db)
    assert [(s["state"], s["firmware"], s["config_version"], s["boot_id"]) for s in status] == [
        ("online", "1.4.2", 7, "b1")]  # fmt: skip
    reasons = rows(influx, "SELECT reason, topic FROM ingest_rejects", db)
    assert sorted(r["reason"] for r in reasons) == ["schema", "topic_mismatch", "unknown_metric"]


def check_one_sequence(influx: InfluxDB, db: str) -> None:
    """Telemetry 0, 3, 5 and events 1, 2, 4 of one boot are one stream: no gaps."""

    def device_stats() -> list[dict[str, Any]]:
        return rows(influx, "SELECT last(received) AS received, last(gaps) AS gaps "
                    "FROM ingest_device_stats WHERE device_id = 'drain-00000'", db)  # fmt: skip

    wait_until(lambda: any(r["received"] == 6 for r in device_stats()), timeout_s=30)
    assert device_stats()[0]["gaps"] == 0
