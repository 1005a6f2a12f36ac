"""The local servers start, answer, keep their data across restarts and die with their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from uuid import uuid4

import paho.mqtt.client as mqtt
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.enums import CallbackAPIVersion

from telemetry_core.errors import ServiceError
from tests.helpers import InfluxFactory, MosquittoFactory, tagged_pids, wait_until
from xiuhua.services import InfluxDB, Mosquitto, VictoriaMetrics, mqtt_answers

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


class _Client:
    """A paho client that records CONNACKs and messages, for assertions with wait_until."""

    def __init__(self, server: Mosquitto, client_id: str, *, clean: bool = True) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
            reconnect_on_failure=False,
        )
        self.server = server
        self.connack: list[int] = []
        self.suback = False
        self.messages: list[mqtt.MQTTMessage] = []
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.append(rc.value)
        self.client.on_subscribe = lambda *_args: setattr(self, "suback", True)
        self.client.on_message = lambda _c, _u, msg: self.messages.append(msg)

    def connect(self, username: str | None = None, password: str | None = None) -> int:
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect(self.server.host, self.server.port, keepalive=30)
        self.client.loop_start()
        wait_until(lambda: bool(self.connack), timeout_s=DEADLINE_S, message="CONNACK")
        return self.connack[-1]

    def subscribe(self, topic: str) -> None:
        self.suback = False
        self.client.subscribe(topic, qos=1)
        wait_until(lambda: self.suback, timeout_s=DEADLINE_S, message=f"SUBACK {topic}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(DEADLINE_S)

    def payloads(self) -> list[bytes]:
        return [bytes(m.payload) for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def _connected(
    server: Mosquitto, client_id: str = "", *, clean: bool = True, user: str | None = None
) -> Iterator[_Client]:
    client = _Client(server, client_id, clean=clean)
    try:
        password = None if user is None else f"pw-{user}"
        assert client.connect(user, password) == 0
        yield client
    finally:
        client.close()


def _retained(server: Mosquitto, topic: str) -> list[bytes]:
    with _connected(server) as sub:
        sub.subscribe(topic)
        wait_until(lambda: bool(sub.messages), timeout_s=DEADLINE_S, message="retained")
        assert all(m.retain for m in sub.messages)
        return sub.payloads()


def test_shared_broker_answers_and_routes(mosquitto: Mosquitto) -> None:
    assert mqtt_answers(mosquitto.host, mosquitto.port)
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    with _connected(mosquitto) as sub, _connected(mosquitto) as pub:
        sub.subscribe("test/services/route/#")
        pub.publish("test/services/route/a", b"hello")
        wait_until(lambda: sub.payloads() == [b"hello"], timeout_s=DEADLINE_S)


def test_retained_message_survives_restart(mosquitto_factory: MosquittoFactory) -> None:
    broker = mosquitto_factory()
    port, pid = broker.port, broker.pid
    with _connected(broker) as pub:
        pub.publish("xh/v1/jiaojiang/drain/d1/status", b"online", retain=True)
    broker.restart()
    assert (broker.port, broker.is_running) == (port, True)
    assert broker.pid != pid
    assert broker.db_path.is_file()
    assert _retained(broker, "xh/v1/jiaojiang/drain/d1/status") == [b"online"]


def test_queue_beyond_a_thousand_messages_survives_restart(
    mosquitto_factory: MosquittoFactory,
) -> None:
    # Mosquitto's default max_queued_messages (1000) would drop the rest without a word.
    broker = mosquitto_factory()
    count = 1500
    with _connected(broker, "ingest", clean=False) as sub:
        sub.subscribe("q/#")
    with _connected(broker) as pub:
        infos = [pub.client.publish(f"q/{i}", str(i).encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(DEADLINE_S)
    broker.restart()
    with _connected(broker, "ingest", clean=False) as sub:
        wait_until(lambda: len(sub.messages) >= count, timeout_s=DEADLINE_S, message="queue")
        assert sorted(int(p) for p in sub.payloads()) == list(range(count))


def test_kill_then_start_keeps_autosaved_state(mosquitto_factory: MosquittoFactory) -> None:
    broker = mosquitto_factory()
    with _connected(broker) as pub:
        pub.publish("k/retained", b"saved", retain=True)
    # SIGKILL loses what was not autosaved yet: wait for the autosave to hold our message.
    wait_until(
        lambda: broker.db_path.is_file() and b"k/retained" in broker.db_path.read_bytes(),
        timeout_s=DEADLINE_S,
        message="autosave",
    )
    broker.kill()
    assert not broker.is_running
    assert broker.pid is None
    assert not mqtt_answers(broker.host, broker.port)
    broker.start()
    assert _retained(broker, "k/retained") == [b"saved"]


def test_auth_mode_refuses_strangers_and_applies_pattern_acl(
    mosquitto_factory: MosquittoFactory,
) -> None:
    acl = "user monitor\ntopic read xh/#\n\npattern readwrite xh/v1/+/+/%u/#\n"
    users = {name: f"pw-{name}" for name in ("dev1", "dev2", "monitor")}
    broker = mosquitto_factory(users=users, acl=acl)
    assert broker.auth_enabled
    assert mqtt_answers(broker.host, broker.port)  # refuses, but answers
    anonymous, wrong = _Client(broker, "anon"), _Client(broker, "wrong")
    try:
        # paho reports MQTT 5 reason codes: 134 bad user name or password, 135 not authorised.
        assert anonymous.connect() == 135
        assert wrong.connect("dev1", "not-the-password") in (134, 135)
    finally:
        anonymous.close()
        wrong.close()
    with _connected(broker, user="monitor") as monitor:
        monitor.subscribe("xh/#")
        with _connected(broker, user="dev1") as spoofer:
            spoofer.client.publish("xh/v1/jiaojiang/drain/dev2/telemetry", b"spoofed", qos=1)
            # Mosquitto 2.0 drops an MQTT 3.1.1 client that publishes outside its ACL.
            wait_until(lambda: not spoofer.client.is_connected(), timeout_s=DEADLINE_S)
        with _connected(broker, user="dev1") as dev1:
            dev1.publish("xh/v1/jiaojiang/drain/dev1/telemetry", b"own")
        # Both reached the broker in order: had "spoofed" been routed, it would come first.
        wait_until(lambda: b"own" in monitor.payloads(), timeout_s=DEADLINE_S)
        assert monitor.payloads() == [b"own"]


def test_influxdb_points_survive_restart_and_kill(influxdb_factory: InfluxFactory) -> None:
    server = influxdb_factory()
    server.create_database("keep")
    server.write_lp(
        "keep", [f"drain,device_id=d1 level_m={i / 10} {i}000000000" for i in range(50)]
    )
    assert server.count("drain", "keep") == 50
    server.restart()
    assert server.count("drain", "keep") == 50
    server.write_lp("keep", "drain,device_id=d1 level_m=9 99000000000")
    server.kill()
    server.start()
    assert server.count("drain", "keep") == 51
    assert "keep" in server.databases()


def test_influxdb_errors_are_raised(influxdb: InfluxDB, influx_db: str) -> None:
    with pytest.raises(ServiceError, match="error parsing query"):
        influxdb.query("SELEC 1", influx_db)
    with pytest.raises(ServiceError, match="unable to parse"):
        influxdb.write_lp(influx_db, "no fields here")
    with pytest.raises(ServiceError, match="database not found"):
        influxdb.query("SELECT * FROM x", "no_such_db")
    assert influxdb.count("nothing", influx_db) == 0


def test_influx_db_fixture_is_fresh_and_isolated(influxdb: InfluxDB, influx_db: str) -> None:
    assert influx_db in influxdb.databases()
    influxdb.write_lp(influx_db, "m,tag=a v=1i 1000000000", precision="ns")
    body = influxdb.query("SELECT v FROM m", influx_db, epoch="ms")
    assert body["results"][0]["series"][0]["values"] == [[1000, 1]]


def test_two_instances_side_by_side(
    mosquitto_factory: MosquittoFactory, influxdb_factory: InfluxFactory
) -> None:
    brokers = [mosquitto_factory(), mosquitto_factory()]
    influxes = [influxdb_factory(), influxdb_factory()]
    ports = {s.port for s in [*brokers, *influxes]} | {i.rpc_port for i in influxes}
    assert len(ports) == 6
    assert all(mqtt_answers(b.host, b.port) for b in brokers)
    influxes[0].create_database("only_here")
    assert "only_here" not in influxes[1].databases()


def test_victoria_metrics_accepts_influx_v2_writes(victoria_metrics: VictoriaMetrics) -> None:
    now_ns = time.time_ns()
    victoria_metrics.write_lp(f"vmtest,device_id=d1,district=jiaojiang level_m=1.25 {now_ns}")

    # Flush-and-export sees a new series at once; an early PromQL query would cache the miss.
    def exported() -> bool:
        victoria_metrics.flush()
        return bool(victoria_metrics.export('{__name__="vmtest_level_m"}'))

    wait_until(exported, timeout_s=DEADLINE_S, message="export sees the flushed point")
    [raw] = victoria_metrics.export('{__name__="vmtest_level_m"}')
    assert raw["values"] == [1.25]
    assert raw["timestamps"] == [now_ns // 1_000_000]
    wait_until(
        lambda: bool(victoria_metrics.query('vmtest_level_m{device_id="d1"}')),
        timeout_s=DEADLINE_S,
        message="instant query sees the point",
    )
    [series] = victoria_metrics.query('vmtest_level_m{device_id="d1"}')
    assert series["metric"] == {
        "__name__": "vmtest_level_m",
        "device_id": "d1",
        "district": "jiaojiang",
    }
    assert float(series["value"][1]) == 1.25


def test_victoria_metrics_takes_writes_from_influxdb_client_v2(
    victoria_metrics: VictoriaMetrics,
) -> None:
    # InfluxDB 1.6 has no /api/v2/write; VM stands in for a v2 server in the sink's tests.
    now_ns = time.time_ns()
    # VM ignores the token; the client insists on one.
    with InfluxDBClient(url=victoria_metrics.url, token="unused", org="xiuhua") as client:  # noqa: S106
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="xiuhua", record=f"vmclient,device_id=d9 level_m=2.5 {now_ns}"
        )

    def exported() -> list[dict[str, object]]:
        victoria_metrics.flush()
        return victoria_metrics.export('{__name__="vmclient_level_m"}')

    wait_until(lambda: bool(exported()), timeout_s=DEADLINE_S, message="v2 client point")
    assert exported() == [
        {
            "metric": {"__name__": "vmclient_level_m", "device_id": "d9"},
            "values": [2.5],
            "timestamps": [now_ns // 1_000_000],
        }
    ]


def test_services_up_command_runs_until_sigterm(tmp_path: Path) -> None:
    run = "from xiuhua.commands.services import app; app()"
    argv = [sys.executable, "-c", run, "up", "--data-dir", str(tmp_path), "--no-victoria"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        env = _read_exports(proc.stdout)
        mqtt_port = int(env["XIUHUA_MQTT__URL"].rsplit(":", 1)[1])
        assert mqtt_answers("127.0.0.1", mqtt_port)
        influx_port = int(env["XIUHUA_INFLUX__URL"].rsplit(":", 1)[1])
        # An unstarted InfluxDB object over the same directory works as a client.
        with contextlib.closing(InfluxDB(tmp_path / "influxdb", port=influx_port)) as influx:
            assert env["XIUHUA_INFLUX__DATABASE"] in influx.databases()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE_S) == 0
    assert not mqtt_answers("127.0.0.1", mqtt_port)
    assert (tmp_path / "mosquitto" / "data" / "mosquitto.db").is_file()  # --data-dir is kept


def _read_exports(stream: IO[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in stream:
        if line.startswith("export "):
            key, value = line[len("export ") :].strip().split("=", 1)
            env[key] = value
        if "XIUHUA_INFLUX__DATABASE" in env:
            return env
    raise AssertionError(f"`services up` exited before printing its settings: {env}")


@pytest.mark.parametrize("ready", [False, True], ids=["while-starting", "when-ready"])
def test_services_up_leaves_no_server_or_folder_after_sigterm(tmp_path: Path, ready: bool) -> None:
    # Early: as soon as the first server runs, before the command installed anything else.
    tag = uuid4().hex
    env = os.environ | {"XIUHUA_TEST_TAG": tag, "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "xiuhua", "services", "up", "--no-victoria"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as proc:
        if ready:
            assert proc.stdout is not None
            assert any(b"XIUHUA_INFLUX__DATABASE" in line for line in proc.stdout)
        else:
            wait_until(lambda: len(tagged_pids(tag)) >= 2, timeout_s=DEADLINE_S)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=DEADLINE_S)
    assert code in (0, 143)  # 0 when the signal came after start-up: the normal way to stop
    wait_until(lambda: not tagged_pids(tag), timeout_s=DEADLINE_S, message="servers gone")
    assert list(tmp_path.glob("xiuhua-services-*")) == []
