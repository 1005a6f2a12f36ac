"""Shared pieces of the ingester's integration tests: a fleet, payloads, a publisher, settings."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_ingest import IngestSettings, build_service, load_fleet
from cloud_ingest._service import IngestService
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry, write_registry_csv
from telemetry_core.schema import Telemetry, encode
from xiuhua.services import InfluxDB, wait_until

DISTRICTS = ("jiaojiang", "huangyan", "luqiao")


def make_fleet(path: Path, count: int) -> Registry:
    """``count`` drain nodes spread over three districts, written as a CSV fleet file."""
    devices = [
        Device(f"drain-{i:05d}", DeviceKind.DRAIN, DISTRICTS[i % 3], 28.6, 121.4, 60.0, {})
        for i in range(count)
    ]
    write_registry_csv(devices, path)
    return Registry(devices)


def topic_of(device: Device) -> str:
    """The telemetry topic of ``device``."""
    return f"xh/v1/{device.district}/{device.kind.value}/{device.device_id}/telemetry"


def payload(device_id: str, seq: int, ts_ms: int, level_m: float, boot: str = "b1") -> bytes:
    """One valid single-reading telemetry message."""
    msg = Telemetry(
        v=1, device_id=device_id, ts=ts_ms, seq=seq, boot_id=boot, readings={"level_m": level_m}
    )
    return encode(msg)


def event_payload(device_id: str, seq: int, ts_ms: int, **fields: object) -> bytes:
    """A device event (``type`` and ``severity`` default to a threshold crossing)."""
    body: dict[str, object] = {"v": 1, "device_id": device_id, "ts": ts_ms, "seq": seq,
                               "boot_id": "b1", "type": "threshold_crossed",
                               "severity": "warning"}  # fmt: skip
    body.update(fields)
    return msgspec.json.encode(body)


def status_payload(device_id: str, ts_ms: int, state: str, **fields: object) -> bytes:
    """A birth (``online``) or last will (``offline``) status."""
    body: dict[str, object] = {"v": 1, "device_id": device_id, "ts": ts_ms, "boot_id": "b1",
                               "state": state}  # fmt: skip
    body.update(fields)
    return msgspec.json.encode(body)


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, host: str, port: int, client_id: str = "") -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(1000)
        self._client.connect(host, port)
        self._client.loop_start()

    def publish(
        self, messages: Iterable[tuple[str, bytes]], timeout_s: float = 60.0, retain: bool = False
    ) -> int:
        """Publish all; return how many were acknowledged by the broker."""
        infos = [self._client.publish(t, p, qos=1, retain=retain) for t, p in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        return sum(1 for i in infos if i.is_published())

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def prime_session(host: str, port: int, client_id: str, group: str) -> None:
    """Create the ingester's persistent session and shared subscription before it first runs,
    so the broker queues what is published while the ingester starts (or is dead)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(f"$share/{group}/xh/v1/+/+/+/telemetry", qos=1)
    assert done.wait(30), "the broker did not confirm the subscription"
    client.disconnect()
    client.loop_stop()


def ingest_subprocess(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``xiuhua ingest --config`` as a child process (its own interpreter, killable)."""
    code = "from xiuhua.commands.ingest import app; app()"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config)], stdout=log, stderr=log
        )


def write_config(
    path: Path, fleet: Path, mqtt_url: str, influx_url: str, db: str, **ingest: object
) -> Path:
    """A TOML settings file for ``xiuhua ingest``."""
    lines = [
        "[mqtt]", f'url = "{mqtt_url}"',
        "[influx]", f'url = "{influx_url}"', f'database = "{db}"',
        "[registry]", f'path = "{fleet}"',
        "[ingest]",
    ]  # fmt: skip
    for key, value in {"batch_interval_s": 0.05, "stats_interval_s": 1.0, **ingest}.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_json_logs(config: Path) -> Path:
    """``config`` with ``[log] json_lines = true``: the ingester logs JSON lines on stderr."""
    with config.open("a", encoding="utf-8") as out:
        out.write("[log]\njson_lines = true\n")
    return config


def start_ingester(config: Path) -> IngestService:
    """An ingester started in this process from a settings file."""
    from telemetry_core.settings import load_settings

    settings = load_settings(IngestSettings, config)
    service = build_service(settings, load_fleet(settings))
    service.start()
    if not service.wait_subscribed(60.0):
        service.stop()
        raise AssertionError("the ingester did not subscribe within 60 s")
    return service


def wait_count(
    influx: InfluxDB, db: str, measurement: str, expected: int, timeout_s: float = 60.0
) -> int:
    """Poll until ``measurement`` holds ``expected`` points; return the final count."""
    wait_until(lambda: influx.count(measurement, db) >= expected, timeout_s=timeout_s)
    return influx.count(measurement, db)


def prime_plain_session(host: str, port: int, client_id: str, filters: Iterable[str]) -> None:
    """Create a consumer's persistent session with plain subscriptions before it first runs,
    so the broker queues for it whatever is published while it starts."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe([(f, 1) for f in filters])
    assert done.wait(30), "the broker did not confirm the subscriptions"
    client.disconnect()
    client.loop_stop()


def stored_seqs(influx: InfluxDB, db: str, measurement: str = "drain") -> dict[str, list[int]]:
    """device id -> every stored ``seq`` of ``measurement`` (one per point), from InfluxDB."""
    body = influx.query(f'SELECT "seq" FROM "{measurement}" GROUP BY "device_id"', db)  # noqa: S608
    out: dict[str, list[int]] = {}
    for series in body["results"][0].get("series", []):
        out[series["tags"]["device_id"]] = [int(row[1]) for row in series["values"]]
    return out
