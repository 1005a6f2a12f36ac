"""A broker restart loses nothing in the default configuration, and partitions scale out.

Real edge agents (a gateway hosting several drain nodes, and a single-device agent, both the
production wiring of ``xiuhua edge`` with a deterministic driver) publish continuously while
Mosquitto restarts. The ingester (``xiuhua ingest`` as a child process, default subscription
settings) is made to come back *after* the agents, so readings are published between the
broker's return and its re-subscription: the window in which Mosquitto 2.0.11 drops messages
for a ``$share`` subscription. Every reading must be stored exactly once.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from tests.helpers import InfluxDB, MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, spool_rows_before, write_config
from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    payload,
    prime_plain_session,
    start_ingester,
    stored_seqs,
    topic_of,
    with_json_logs,
)
from tests.integration.ingest.kit import write_config as write_ingest_config

pytestmark = pytest.mark.integration

GATEWAY = "gw-jj-restart"
GATEWAY_DEVICES = [
    Device(f"dr-jj-{n:06d}", DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 1.0) for n in range(6)
]
SINGLE = Device("dr-hy-000001", DeviceKind.DRAIN, "huangyan", 28.64, 121.26, 1.0)
ALL = [*GATEWAY_DEVICES, SINGLE]
CHANNELS = ("telemetry", "event", "status")


def _agents(tmp_path: Path, mqtt_url: str) -> list[AgentProcess]:
    gw_fleet = tmp_path / "gateway-fleet.csv"
    write_registry_csv(GATEWAY_DEVICES, gw_fleet)
    gateway = write_config(
        tmp_path / "gw.toml", mqtt_url, GATEWAY, tmp_path / "gw-state", fleet=gw_fleet
    )
    single = write_config(
        tmp_path / "one.toml", mqtt_url, SINGLE.device_id, tmp_path / "one-state",
        district=SINGLE.district,
    )  # fmt: skip
    return [
        AgentProcess(gateway, tmp_path / "gw.log"),
        AgentProcess(single, tmp_path / "one.log"),
    ]


def _stored_at_least(influx: InfluxDB, db: str, agents: list[AgentProcess], count: int) -> set[str]:
    for agent in agents:
        agent.check()  # an agent that died fails the test with its log
    return {k for k, v in stored_seqs(influx, db).items() if len(v) >= count}


def _complete(seqs: Sequence[int]) -> bool:
    return bool(seqs) and sorted(seqs) == list(range(max(seqs) + 1))


def _stop_agents(agents: list[AgentProcess], tmp_path: Path) -> None:
    for agent in agents:
        assert agent.terminate() == 0, agent.log_text()[-2000:]
    for state in ("gw-state", "one-state"):
        # Every reading the agents made was acknowledged by the broker: none is left over.
        assert spool_rows_before(tmp_path / state / "spool.sqlite3", math.inf) == 0


def test_edge_agents_publish_through_a_broker_restart_and_every_reading_is_stored_once(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    broker = mosquitto_factory()
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(ALL, fleet)
    # Default subscription settings; only the reconnect delay is set, long enough that the
    # agents (reconnect_max_s 2) are back and publishing before the ingester re-subscribes.
    config = with_json_logs(write_ingest_config(
        tmp_path / "ingest.toml", fleet, broker.url, influxdb.url, influx_db,
        instance="restart-1", retry_min_s=3.0, retry_max_s=4.0,
    ))  # fmt: skip
    filters = [f"xh/v1/+/+/+/{ch}" for ch in CHANNELS]
    prime_plain_session(broker.host, broker.port, "xiuhua-xiuhua-ingest-restart-1", filters)
    witness = Recorder(broker.host, broker.port, "xh/v1/+/drain/+/telemetry", "witness")
    ingester = ingest_subprocess(config, tmp_path / "ingest.log")
    agents = _agents(tmp_path, broker.url)
    try:
        for agent in agents:
            agent.start()
        every = {d.device_id for d in ALL}
        wait_until(
            lambda: _stored_at_least(influxdb, influx_db, agents, 10) == every,
            timeout_s=90, message="readings of every device stored before the restart",
        )  # fmt: skip
        before = len(witness.telemetry())
        broker.restart()
        log = tmp_path / "ingest.log"
        wait_until(
            lambda: log.read_text(errors="replace").count('"mqtt_connected"') >= 2,
            timeout_s=60, message="the ingester reconnected",
        )  # fmt: skip
        wait_until(
            lambda: len(witness.telemetry()) >= before + 20 * len(ALL),
            timeout_s=60, message="readings after the restart",
        )  # fmt: skip
        _stop_agents(agents, tmp_path)
        published = {(t.device_id, t.seq) for t in witness.telemetry()}
        wait_until(
            lambda: sum(len(v) for v in stored_seqs(influxdb, influx_db).values())
            >= len(published),
            timeout_s=60, message="every published reading stored",
        )  # fmt: skip
        stored = stored_seqs(influxdb, influx_db)
        assert {(d, s) for d, seqs in stored.items() for s in seqs} == published
        for device_id, seqs in stored.items():
            assert _complete(seqs), f"{device_id}: missing seqs"
        text = log.read_text(errors="replace")
        assert '"shared_subscription_loses_on_broker_restart"' not in text
    finally:
        for agent in agents:
            agent.kill()
        ingester.terminate()
        ingester.wait(30)
        witness.close()


def _instances(influx: InfluxDB, db: str) -> dict[str, set[str]]:
    """instance -> the devices it accounted for (``ingest_device_stats``)."""
    q = 'SELECT last("received") FROM "ingest_device_stats" GROUP BY "instance", "device_id"'
    out: dict[str, set[str]] = {}
    for series in influx.query(q, db)["results"][0].get("series", []):
        out.setdefault(series["tags"]["instance"], set()).add(series["tags"]["device_id"])
    return out


def test_two_partitioned_instances_split_the_districts_and_one_down_delays_only_its_own(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    broker = mosquitto_factory()
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(ALL, fleet)
    # One settings file for both: the plan of partitions, the instance from the environment.
    config = with_json_logs(write_ingest_config(
        tmp_path / "ingest.toml", fleet, broker.url, influxdb.url, influx_db, retry_max_s=1.0,
    ))  # fmt: skip
    with config.open("a", encoding="utf-8") as out:
        out.write('[ingest.partitions]\njj = ["jiaojiang"]\nhy = ["huangyan"]\n')
    for name, district in (("jj", "jiaojiang"), ("hy", "huangyan")):
        topics = [f"xh/v1/{district}/+/+/{ch}" for ch in CHANNELS]
        prime_plain_session(broker.host, broker.port, f"xiuhua-xiuhua-ingest-{name}", topics)
    witness = Recorder(broker.host, broker.port, "xh/v1/+/drain/+/telemetry", "witness-2")
    procs = {name: _instance(config, tmp_path, name) for name in ("jj", "hy")}
    agents = _agents(tmp_path, broker.url)
    try:
        for agent in agents:
            agent.start()
        every = {d.device_id for d in ALL}
        wait_until(
            lambda: _stored_at_least(influxdb, influx_db, agents, 5) == every,
            timeout_s=90, message="readings of every device stored",
        )  # fmt: skip
        procs["hy"].terminate()
        assert procs["hy"].wait(30) == 0
        stored_then = len(stored_seqs(influxdb, influx_db)[SINGLE.device_id])
        wait_until(
            lambda: sum(t.device_id == SINGLE.device_id for t in witness.telemetry())
            >= stored_then + 10,
            timeout_s=60, message="huangyan readings published while its instance is down",
        )  # fmt: skip
        # While "hy" is down the broker queues its district; "jj" goes on storing its own.
        assert len(stored_seqs(influxdb, influx_db)[SINGLE.device_id]) == stored_then
        procs["hy"] = _instance(config, tmp_path, "hy")
        _stop_agents(agents, tmp_path)
        published = {(t.device_id, t.seq) for t in witness.telemetry()}
        wait_until(
            lambda: {(d, s) for d, seqs in stored_seqs(influxdb, influx_db).items() for s in seqs}
            == published,
            timeout_s=60, message="every published reading stored",
        )  # fmt: skip
        for device_id, seqs in stored_seqs(influxdb, influx_db).items():
            assert _complete(seqs), f"{device_id}: missing seqs"
            assert len(seqs) == len(set(seqs)), f"{device_id}: a reading stored twice"
        wait_until(
            lambda: _instances(influxdb, influx_db).keys() == {"jj", "hy"},
            timeout_s=30, message="device stats of both instances",
        )  # fmt: skip
        owners = _instances(influxdb, influx_db)
        assert owners["jj"] == {d.device_id for d in GATEWAY_DEVICES}
        assert owners["hy"] == {SINGLE.device_id}
    finally:
        for agent in agents:
            agent.kill()
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        witness.close()


def _instance(config: Path, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XIUHUA_INGEST__INSTANCE": name}
    code = "from xiuhua.commands.ingest import app; app()"
    with (tmp_path / f"ingest-{name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config)], stdout=log, stderr=log, env=env
        )


def test_a_changed_partition_drops_what_the_old_session_subscribed(
    tmp_path: Path, mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str
) -> None:
    broker = mosquitto_factory()
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(ALL, fleet)
    # The session as the default layout left it: every district.
    everything = [f"xh/v1/+/+/+/{ch}" for ch in CHANNELS]
    prime_plain_session(broker.host, broker.port, "xiuhua-xiuhua-ingest-moved", everything)
    config = write_ingest_config(
        tmp_path / "ingest.toml", fleet, broker.url, influxdb.url, influx_db,
        instance="moved", districts=["jiaojiang"],
    )  # fmt: skip
    service = start_ingester(config)  # waits for every SUBACK and the UNSUBACK
    try:
        now_ms = int(time.time() * 1000)
        other, own = SINGLE, GATEWAY_DEVICES[0]
        pub = Publisher(broker.host, broker.port)
        # Published in this order on one connection: had "moved" still held the old filter,
        # the huangyan reading would reach it first.
        sent = [(topic_of(other), payload(other.device_id, 0, now_ms, 1.0)),
                (topic_of(own), payload(own.device_id, 0, now_ms, 1.0))]  # fmt: skip
        assert pub.publish(sent) == 2
        pub.close()
        wait_until(lambda: own.device_id in stored_seqs(influxdb, influx_db), timeout_s=60,
                   message="the partition's own reading stored")  # fmt: skip
        assert other.device_id not in stored_seqs(influxdb, influx_db)
        assert service.counters.received == 1
    finally:
        service.stop()
