"""Support for the edge agent's integration tests: a recording subscriber and an agent process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry_core.schema import CommandAck, Event, Status, Telemetry, decode

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Seen:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    retain: bool

    @property
    def channel(self) -> str:
        """The last topic level."""
        return self.topic.rsplit("/", 1)[-1]


class Recorder:
    """A persistent-session MQTT v5 subscriber that records everything under a filter."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_filter: str,
        client_id: str,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._filter = topic_filter
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(host, port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._filter, qos=1)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self._seen.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def seen(self, channel: str | None = None) -> list[Seen]:
        """What arrived so far, optionally on one channel."""
        with self._lock:
            return [s for s in self._seen if channel is None or s.channel == channel]

    def telemetry(self) -> list[Telemetry]:
        """Decoded telemetry, in arrival order."""
        return [decode(s.payload, Telemetry) for s in self.seen("telemetry")]

    def events(self) -> list[Event]:
        """Decoded events, in arrival order."""
        return [decode(s.payload, Event) for s in self.seen("event")]

    def statuses(self) -> list[Status]:
        """Decoded statuses, in arrival order."""
        return [decode(s.payload, Status) for s in self.seen("status")]

    def acks(self) -> list[CommandAck]:
        """Decoded command acknowledgements, in arrival order."""
        return [decode(s.payload, CommandAck) for s in self.seen("cmd_ack")]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, mqtt_url: str, device_id: str, state_dir: Path, **extra: Any) -> Path:
    """An ``xiuhua edge`` settings file: one device, or a gateway when ``fleet=PATH`` is given."""
    mqtt: dict[str, Any] = {"url": mqtt_url}
    for key in ("username", "password", "tls", "ca_file"):
        if key in extra:
            mqtt[key] = extra.pop(key)
    registry = {"path": str(extra.pop("fleet"))} if "fleet" in extra else {}
    log = {"level": extra.pop("log_level"), "json_lines": True} if "log_level" in extra else {}
    defaults = extra.pop("defaults", {"interval_s": 0.2, "max_silence_s": 60.0, "median_window": 1})
    mode = "gateway_id" if registry else "device_id"
    edge = {
        mode: device_id,
        "district": "jiaojiang",
        "state_dir": str(state_dir),
        "replay_rate_per_s": 200.0,
        "reconnect_max_s": 2.0,
        **extra,
        "defaults": defaults,
    }
    sections = {"mqtt": mqtt, "edge": edge, **({"registry": registry} if registry else {})}
    sections.update({"log": log} if log else {})
    path.write_text(_toml(sections), encoding="utf-8")
    return path


def _toml(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in data.items():
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
        for name, table in nested.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{k} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return msgspec.json.encode(value).decode()


class AgentProcess:
    """``python -m tests.integration.edge_child CONFIG`` (or ``entry``) as a child to SIGKILL."""

    def __init__(
        self,
        config: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        entry: tuple[str, ...] = ("-m", "tests.integration.edge_child"),
    ) -> None:
        self._config = config
        self._log_path = log_path
        self._env = env or {}
        self._entry = entry
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the agent process (``entry`` followed by the config path)."""
        env = {**os.environ, "PYTHONPATH": str(REPO), **self._env}
        with self._log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self._entry, str(self._config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check(self) -> bool:
        """False while running; an ``AssertionError`` with the log tail once the agent died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"agent exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
            )
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self) -> int | None:
        """SIGTERM and wait; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def log_text(self) -> str:
        """What the agent logged."""
        return self._log_path.read_text(encoding="utf-8", errors="replace")


def spool_rows_before(spool_path: Path, created_before_s: float) -> int:
    """Rows in an agent's spool created before a time (read-only; WAL allows it while running)."""
    if not spool_path.exists():
        return 0
    with sqlite3.connect(f"file:{spool_path}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE created_s < ?", (created_before_s,)
        ).fetchone()
    return int(found[0])


def publish_and_wait(
    host: str, port: int, topic: str, payload: bytes, auth: tuple[str, str] | None = None
) -> str:
    """Publish once at QoS 1 as a fresh client; the PUBACK's reason (``Success`` or a refusal)."""
    done = threading.Event()
    reasons: list[str] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    if auth is not None:
        client.username_pw_set(*auth)

    def on_publish(_c: paho.Client, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        reasons.append(str(reason))
        done.set()

    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        if not done.wait(30):
            raise AssertionError(f"no PUBACK for {topic} within 30 s")
    finally:
        client.disconnect()
        client.loop_stop()
    return reasons[0]
