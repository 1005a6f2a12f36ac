"""Silent devices after a restart, against a real broker: the queue's readings come first.

The service reads a reading from each device and stops; its devices go on publishing into its
persistent session for longer than the silent limit, one of them stopping early. Restarted, it
drains that queue (several batches) and judges silence against what it has read: no device is
called silent within the limit of its last reading, and the one that stopped is still reported.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.alerting.kit import (
    Collector,
    Publisher,
    make_fleet,
    reading,
    start_service,
    topic_of,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration

INTERVAL_S, AFTER = 0.5, 4
LIMIT_MS = int(INTERVAL_S * AFTER * 1000)  # silent after 2 s
SILENT_RULES = f"""
version: 1
rules:
  - name: test.silent
    kind: "*"
    type: silent
    category: device
    tier: yellow
    after_intervals: {AFTER}
    repeat: 0s
"""
TALKING, STOPPED = ("dr-jj-000000", "dr-jj-000001"), "dr-jj-000002"
PER_DEVICE = 3000
"""Readings queued per talking device: more than one batch (2,000) of the service's."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_a_backlog_after_a_restart_raises_no_spurious_silent_alert(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db, rules = tmp_path / "fleet.csv", tmp_path / "s.db", tmp_path / "silent.yaml"
    make_fleet(fleet, per_district=3, interval_s=INTERVAL_S)
    rules.write_text(SILENT_RULES, encoding="utf-8")
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db, rules=(rules,),
                          districts=("jiaojiang",), tick_interval_s=0.01)  # fmt: skip
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    sent: dict[str, list[int]] = {d: [] for d in (*TALKING, STOPPED)}
    try:
        service = start_service(config)
        t1 = _now_ms()
        publisher.publish([(topic_of(d), reading(d, 0, t1, 0.1)) for d in (*TALKING, STOPPED)])
        for times in sent.values():
            times.append(t1)
        wait_until(
            lambda: service.counters.evaluated >= 3 and service.backlog == 0
            and not service.checkpointer.busy,
            message="the first readings checkpointed",
        )  # fmt: skip
        service.stop()
        # Down for three silent limits; meanwhile the devices publish into its session.
        wait_until(lambda: _now_ms() > t1 + 3 * LIMIT_MS, message="the outage")
        t2 = _now_ms()
        queued = []
        for i in range(1, PER_DEVICE + 1):
            ts = t1 + (t2 - t1) * i // PER_DEVICE
            for d in (*TALKING, STOPPED) if ts <= t1 + LIMIT_MS // 4 else TALKING:
                queued.append((topic_of(d), reading(d, i, ts, 0.1)))
                sent[d].append(ts)
        publisher.publish(queued)
        service = start_service(config)
        wait_until(lambda: service.counters.evaluated >= len(queued),
                   message="the queue read after the restart")  # fmt: skip
        wait_until(lambda: any(t.device_id == STOPPED for t in collector.unique()),
                   message="the device that stopped reported silent")  # fmt: skip
        service.stop()
        got = [t for t in collector.unique() if t.tier_to == "yellow"]
        # Silence is judged on what was read: a device is called silent at event time T only if
        # it sent nothing in the limit before T (a reading still queued at T counts as sent).
        gaps = [(t.device_id, t.ts - max(ts for ts in sent[t.device_id] if ts <= t.ts))
                for t in got]  # fmt: skip
        early = [(device, gap) for device, gap in gaps if gap <= LIMIT_MS]
        assert early == [], f"called silent within {LIMIT_MS} ms of a reading: (device, ms)"
        assert STOPPED in {t.device_id for t in got}
    finally:
        publisher.close()
        collector.close()
