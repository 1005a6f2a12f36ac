"""Shared pieces of the alerting service's integration tests: fleet, readings, settings, a
transition collector that deduplicates by id, and the service in-process or as a child."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alerting import (
    AlertingService,
    AlertingSettings,
    Engine,
    build_service,
    load_fleet,
    load_rules,
    replay,
)
from alerting._service_build import Store
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry, load_registry, write_registry_csv
from telemetry_core.schema import AlertTransition, Incident, Status, Telemetry, decode, encode
from telemetry_core.settings import load_settings
from telemetry_core.topics import parse_topic
from xiuhua.services import wait_until

HERE = Path(__file__).parent
RULES = HERE / "rules_test.yaml"
SILENT_RULES = HERE / "rules_silent.yaml"
DISTRICTS = ("jiaojiang", "huangyan")
ABBREV = {"jiaojiang": "jj", "huangyan": "hy"}
MIN_MS = 60_000


def make_fleet(path: Path, per_district: int = 3, interval_s: float = 60.0) -> Registry:
    """``per_district`` drain nodes in each of two districts, written as a CSV fleet file."""
    devices = [
        Device(f"dr-{ABBREV[d]}-{i:06d}", DeviceKind.DRAIN, d, 28.6, 121.4, interval_s, {})
        for d in DISTRICTS
        for i in range(per_district)
    ]
    write_registry_csv(devices, path)
    return Registry(devices)


def topic_of(device_id: str, channel: str = "telemetry") -> str:
    """The topic of a test device (district from its id)."""
    district = "jiaojiang" if "-jj-" in device_id else "huangyan"
    return f"xh/v1/{district}/drain/{device_id}/{channel}"


def reading(device_id: str, seq: int, ts_ms: int, fill: float, historical: bool = False) -> bytes:
    """One telemetry message with a fill ratio."""
    msg = Telemetry(v=1, device_id=device_id, ts=ts_ms, seq=seq, boot_id="b1",
                    readings={"fill_ratio": fill}, historical=historical)  # fmt: skip
    return encode(msg)


def status(device_id: str, ts_ms: int, state: str) -> bytes:
    """A birth or a last will."""
    return encode(Status(v=1, device_id=device_id, ts=ts_ms, boot_id="b1", state=state))  # type: ignore[arg-type]


def series(device_id: str, start_ms: int, fills: Sequence[float], step_ms: int = MIN_MS,
           seq0: int = 0) -> list[tuple[str, bytes]]:  # fmt: skip
    """Readings of ``device_id`` one ``step_ms`` apart from ``start_ms``."""
    topic = topic_of(device_id)
    return [(topic, reading(device_id, seq0 + i, start_ms + i * step_ms, f))
            for i, f in enumerate(fills)]  # fmt: skip


def write_config(
    path: Path, fleet: Path, mqtt_url: str, state: Path, *, rules: Sequence[Path] = (RULES,),
    **alerting: object,
) -> Path:  # fmt: skip
    """A TOML settings file for ``xiuhua alerting``."""
    rule_list = ", ".join(f'"{r}"' for r in rules)
    lines = ["[mqtt]", f'url = "{mqtt_url}"', "[registry]", f'path = "{fleet}"', "[alerting]",
             f"rules = [{rule_list}]", f'state_url = "sqlite:///{state}"']  # fmt: skip
    values = {"checkpoint_interval_s": 0.1, "stats_interval_s": 1.0, "tick_interval_s": 0.2,
              **alerting}  # fmt: skip
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, tuple | list):
            lines.append(
                f"{key} = [{', '.join(repr(str(v)).replace(chr(39), chr(34)) for v in value)}]"
            )
        else:
            lines.append(f"{key} = {value!r}")
    lines += ["[log]", "json_lines = true"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_service(config: Path, store: Store | None = None) -> AlertingService:
    """The alerting service started in this process from a settings file."""
    settings = load_settings(AlertingSettings, config)
    service = build_service(settings, load_fleet(settings), store=store)
    service.start()
    if not service.wait_subscribed(60.0):
        service.stop()
        raise AssertionError("the alerting service did not subscribe within 60 s")
    return service


def service_subprocess(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``xiuhua alerting --config`` as a child process (its own interpreter, killable)."""
    code = "from xiuhua.commands.alerting import app; app()"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config)], stdout=log, stderr=log
        )


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, host: str, port: int) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.max_inflight_messages_set(1000)
        self._client.connect(host, port)
        self._client.loop_start()

    def publish(self, messages: Iterable[tuple[str, bytes]], retain: bool = False) -> None:
        """Publish all and wait until the broker has them."""
        infos = [self._client.publish(t, p, qos=1, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


class Collector:
    """Subscribes to ``xh/v1/_alert/#`` and ``xh/v1/_incident/#`` (persistent session, so
    nothing is missed while the service restarts) and keeps every transition and incident
    message received, duplicates included."""

    def __init__(self, host: str, port: int, client_id: str = "test-collector") -> None:
        self.received: list[AlertTransition] = []
        self.raw: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5)  # fmt: skip
        done = threading.Event()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_a: done.set()
        self._client.connect(host, port, clean_start=False, properties=props)
        self._client.loop_start()
        filters = ("xh/v1/_alert/#", "xh/v1/_deadletter/alerting", "xh/v1/_incident/#")
        self._client.subscribe([(f, 1) for f in filters])  # one SUBACK for all three
        assert done.wait(30), "the broker did not confirm the collector's subscriptions"

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.raw.append((msg.topic, bytes(msg.payload)))
            if msg.topic.startswith("xh/v1/_alert/"):
                self.received.append(decode(msg.payload, AlertTransition))

    def unique(self) -> list[AlertTransition]:
        """Transitions deduplicated by id, in arrival order: what a consumer acts on."""
        seen: set[str] = set()
        out = []
        with self._lock:
            for t in self.received:
                if t.transition_id not in seen:
                    seen.add(t.transition_id)
                    out.append(t)
        return out

    def incidents(self) -> list[tuple[str, Incident]]:
        """Incident messages received, with their topics, in arrival order."""
        with self._lock:
            return [
                (t, decode(p, Incident)) for t, p in self.raw if t.startswith("xh/v1/_incident/")
            ]

    def dead_letters(self) -> list[dict[str, object]]:
        """Dead letters received."""
        with self._lock:
            return [msgspec.json.decode(p) for t, p in self.raw if t.startswith("xh/v1/_dead")]

    def wait_for(self, count: int, timeout_s: float = 60.0) -> list[AlertTransition]:
        """Wait until ``count`` distinct transitions arrived; return them."""
        wait_until(lambda: len(self.unique()) >= count, timeout_s=timeout_s,
                   message=f"{count} transitions; got {self.unique()}")  # fmt: skip
        return self.unique()

    def close(self) -> None:
        """Disconnect (the session stays for a reconnect with the same id)."""
        self._client.disconnect()
        self._client.loop_stop()


def replayed_ids(stream: Sequence[tuple[str, bytes]], fleet: Path, rules: Path = RULES) -> set[str]:
    """The transition ids a backtest of ``stream`` gives (the same engine code, offline)."""
    engine = Engine(load_rules(rules), load_registry(fleet))
    items = [(msg.ts, parse_topic(t), msg) for t, p in stream
             for msg in [decode(p, Telemetry)]]  # fmt: skip
    return {t.transition_id for t in replay([engine], items).transitions[0]}


def tiers(
    transitions: Iterable[AlertTransition], device_id: str | None = None
) -> list[tuple[str, str]]:
    """``(tier_from, tier_to)`` of each transition (of one device if given)."""
    return [(t.tier_from, t.tier_to) for t in transitions
            if device_id is None or t.device_id == device_id]  # fmt: skip
