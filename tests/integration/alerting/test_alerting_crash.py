"""SIGKILL in the middle of a stream: after a restart nothing is lost, and what was published
twice carries the same ids (a consumer deduplicating by id sees every transition once)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    replayed_ids,
    series,
    service_subprocess,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
READINGS = 1200
PERIOD = 30  # 15 minutes high, 15 low: two changes per half hour, never flapping


def _stream(devices: list[str], t0: int) -> list[tuple[str, bytes]]:
    fills = [1.2 if (i // (PERIOD // 2)) % 2 else 0.5 for i in range(READINGS)]
    per_device = [series(d, t0 + k * 1000, fills) for k, d in enumerate(devices)]
    return [msg for group in zip(*per_device, strict=True) for msg in group]


def _checkpointed(db: Path) -> bool:
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(db)) as conn:
        try:
            return bool(conn.execute("SELECT count(*) FROM engine_state").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not there yet
            return False


def test_sigkill_mid_stream_loses_nothing_and_re_emits_with_the_same_ids(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "state.db"
    registry = make_fleet(fleet)
    config = write_config(
        tmp_path / "alerting.toml", fleet, mosquitto.url, db, checkpoint_interval_s=0.5
    )
    stream = _stream(
        [d.device_id for d in registry], int(time.time() * 1000) - (READINGS + 60) * MIN_MS
    )
    expected = replayed_ids(stream, fleet)
    assert len(expected) > 50
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    log = tmp_path / "alerting.log"
    child = service_subprocess(config, log)
    try:
        wait_until(lambda: b"mqtt_subscribed" in log.read_bytes(), timeout_s=60)
        publisher.publish(stream[:600])
        wait_until(lambda: len(collector.unique()) >= 5 and _checkpointed(db), timeout_s=60)
        publisher.publish(stream[600:])
        os.kill(child.pid, signal.SIGKILL)  # in the middle of the stream, between checkpoints
        child.wait(30)
        child = service_subprocess(config, log)
        wait_until(lambda: log.read_bytes().count(b"mqtt_subscribed") >= 2, timeout_s=60)
        assert b"alerting_state_restored" in log.read_bytes()
        wait_until(lambda: {t.transition_id for t in collector.unique()} >= expected,
                   timeout_s=120, message="every transition after the restart")  # fmt: skip
        got = collector.unique()
        assert {t.transition_id for t in got} == expected
        keys = [(t.alert_id, t.tier_from, t.tier_to, t.ts) for t in got]
        assert len(keys) == len(set(keys))  # no duplicate under a different id
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
        publisher.close()
        collector.close()
    assert child.returncode == 0
