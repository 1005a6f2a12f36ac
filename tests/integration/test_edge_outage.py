"""The broker is down for 60 s while the agent samples, and the agent is SIGKILLed mid-outage.

Every reading made during the outage, by both boots, must arrive after the broker returns: in
order, marked historical, with no gap in any boot's sequence numbers. Duplicates are allowed only
as exact repeats of a reading (same device, boot, seq, ts and values). The real ingester
(``xiuhua ingest``) runs throughout, and InfluxDB proves the end result: every published reading
stored exactly once, with its seq, and the outage's readings flagged historical.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from telemetry_core.schema import Telemetry
from tests.helpers import InfluxDB, MosquittoFactory, WaitTimeoutError, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, spool_rows_before, write_config
from xiuhua.demo import ChildProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = "dr-jj-000042"
OUTAGE_S = 60.0


def _by_boot(messages: list[Telemetry]) -> dict[str, list[Telemetry]]:
    boots: dict[str, list[Telemetry]] = defaultdict(list)
    for message in messages:
        boots[message.boot_id].append(message)
    return boots


def _complete(messages: list[Telemetry]) -> bool:
    seqs = {m.seq for m in messages}
    return bool(seqs) and seqs == set(range(max(seqs) + 1))


def _start_ingester(tmp_path: Path, mqtt_url: str, influxdb: InfluxDB, db: str) -> ChildProcess:
    fleet = tmp_path / "fleet.csv"
    # The device as the test child defines it (edge_child.main), so the ingester can enrich it.
    write_registry_csv([Device(DEVICE, DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 1.0)], fleet)
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[mqtt]\nurl = "{mqtt_url}"\n[registry]\npath = "{fleet}"\n'
        f'[influx]\nurl = "{influxdb.url}"\ndatabase = "{db}"\n'
        f'[ingest]\ninstance = "outage-{db}"\ngroup = "outage-{db}"\nretry_max_s = 2.0\n'
        # Mosquitto 2.0.11 does not restore a *shared* subscription from its persistence file:
        # after the broker restart, messages published before the ingester re-subscribes would
        # never reach it. A plain subscription of a persistent session is restored and queued.
        "shared_subscription = false\n",
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "xiuhua", "ingest", "--config", str(config)]
    return ChildProcess("ingest", argv, tmp_path / "ingest.log")


def _stored(influxdb: InfluxDB, db: str) -> dict[int, dict[str, Any]]:
    """ts (ms) -> the stored point of the device, from InfluxDB."""
    query = f"SELECT * FROM drain WHERE device_id = '{DEVICE}'"  # noqa: S608 - fixed test id
    body = influxdb.query(query, db, epoch="ms")
    points: dict[int, dict[str, Any]] = {}
    for series in body["results"][0].get("series", []):
        for row in series["values"]:
            point = dict(zip(series["columns"], row, strict=True))
            points[point["time"]] = point
    return points


def _count_stored(influxdb: InfluxDB, db: str) -> int:
    query = f"SELECT count(seq) FROM drain WHERE device_id = '{DEVICE}'"  # noqa: S608
    series = influxdb.query(query, db)["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def test_outage_with_sigkill_loses_nothing(
    mosquitto_factory: MosquittoFactory, influxdb: InfluxDB, influx_db: str, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"xh/v1/+/+/{DEVICE}/#", "rec-outage")
    ingester = _start_ingester(tmp_path, broker.url, influxdb, influx_db)
    # The agent's first readings must find the ingester subscribed (it subscribes on connect).
    wait_until(
        lambda: (
            "mqtt_connected" in ingester.log_path.read_text(errors="replace")
            or not ingester.alive()
        ),
        timeout_s=60,
        message="ingester connected",
    )
    state = tmp_path / "state"
    config = write_config(tmp_path / "edge.toml", broker.url, DEVICE, state)
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or len(recorder.telemetry()) >= 5,
            timeout_s=60,
            message="live readings",
        )
        broker.stop()  # SIGTERM: Mosquitto saves sessions, so the recorder's queue survives
        down_at = time.monotonic()
        wait_until(
            lambda: time.monotonic() - down_at >= OUTAGE_S / 2,
            timeout_s=OUTAGE_S,
            interval_s=0.5,
            message="first half of the outage",
        )
        agent.kill()
        agent.start()
        wait_until(
            lambda: time.monotonic() - down_at >= OUTAGE_S,
            timeout_s=OUTAGE_S,
            interval_s=0.5,
            message="second half of the outage",
        )
        back_at_s = time.time()
        broker.start()
        wait_until(
            lambda: spool_rows_before(state / "spool.sqlite3", back_at_s) == 0,
            timeout_s=120,
            message="backlog replayed and acknowledged",
        )
        wait_until(
            lambda: (
                len(_by_boot(recorder.telemetry())) == 2
                and all(_complete(m) for m in _by_boot(recorder.telemetry()).values())
            ),
            timeout_s=60,
            message="every boot's sequence complete at the subscriber",
        )
        agent.terminate()
        published_ts = {m.ts for m in recorder.telemetry()}
        with contextlib.suppress(WaitTimeoutError):  # the assertion below says what is missing
            wait_until(
                lambda: (
                    _count_stored(influxdb, influx_db) >= len(published_ts) or not ingester.alive()
                ),
                timeout_s=90,
                message="every published reading stored by the ingester",
            )
        assert ingester.alive(), ingester.tail()
        stored_ts = set(_stored(influxdb, influx_db))
        missing = [m for m in recorder.telemetry() if m.ts not in stored_ts]
        assert not missing, (
            f"{len(missing)} of {len(published_ts)} readings not in InfluxDB, e.g. "
            f"{[(m.boot_id[:6], m.seq, m.ts, m.historical) for m in missing[:10]]}"
        )
    finally:
        agent.terminate()
        recorder.close()
        ingest_exit = ingester.stop()
    assert ingest_exit == 0, ingester.tail()

    received = recorder.telemetry()
    boots = _by_boot(received)
    first, second = sorted(boots.values(), key=lambda ms: ms[0].ts)
    historical = [m for m in received if m.historical]
    # 5 Hz sampling: about 150 readings per half of the outage.
    assert sum(m.boot_id == first[0].boot_id for m in historical) >= 100
    assert sum(m.boot_id == second[0].boot_id for m in historical) >= 100
    for messages in boots.values():
        replayed = [m.seq for m in messages if m.historical]
        assert replayed == sorted(replayed), "historical readings arrive in order"
        by_seq: dict[int, set[tuple[int, tuple[tuple[str, float], ...]]]] = defaultdict(set)
        for m in messages:
            by_seq[m.seq].add((m.ts, tuple(sorted(m.readings.items()))))
        assert all(len(v) == 1 for v in by_seq.values()), "a repeat is always the same reading"
    outage_readings = [
        m
        for m in received
        if back_at_s * 1000 - OUTAGE_S * 1000 + 2000 < m.ts < back_at_s * 1000 - 1000
    ]
    assert outage_readings
    assert all(m.historical for m in outage_readings)

    _check_influx(influxdb, influx_db, received)


def _check_influx(influxdb: InfluxDB, db: str, received: list[Telemetry]) -> None:
    """InfluxDB holds each published reading exactly once, with its seq and historical flag."""
    by_ts: dict[int, Telemetry] = {}
    for m in received:  # a repeat is the same reading (checked above); keep the historical copy
        if m.ts not in by_ts or m.historical:
            by_ts[m.ts] = m
    stored = _stored(influxdb, db)
    assert _count_stored(influxdb, db) == len(stored) == len(by_ts)
    assert set(stored) == set(by_ts)
    for ts, message in by_ts.items():
        point = stored[ts]
        assert point["seq"] == message.seq
        assert point["level_m"] == pytest.approx(message.readings["level_m"])
        if message.historical:
            assert point["historical"] is True, (ts, point)
    for boot in _by_boot(received).values():
        seqs = sorted(stored[m.ts]["seq"] for m in {m.ts: m for m in boot}.values())
        assert seqs == list(range(len(seqs))), "no gap in any boot's seq, in InfluxDB"
