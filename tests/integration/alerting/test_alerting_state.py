"""State over time against a real broker: restarts, silent devices, silences, flapping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerting import Silence
from alerting._store import AlertStore
from tests.integration.alerting.kit import (
    MIN_MS,
    SILENT_RULES,
    Collector,
    Publisher,
    make_fleet,
    reading,
    series,
    start_service,
    tiers,
    topic_of,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration
DEV = "dr-jj-000000"


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_a_restart_in_the_middle_of_a_duration_neither_forgets_it_nor_re_alerts(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "s.db"
    make_fleet(fleet)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    t0 = _now_ms() - 60 * MIN_MS
    try:
        service = start_service(config)
        publisher.publish(series(DEV, t0, [0.8, 0.8, 0.8]))  # 2 of the 5 minutes of yellow
        wait_until(lambda: service.counters.evaluated >= 3 and service.counters.checkpoints >= 1)
        service.stop()
        service = start_service(config)
        publisher.publish(series(DEV, t0 + 3 * MIN_MS, [0.8, 0.8, 0.8, 0.8], seq0=3))
        [yellow] = collector.wait_for(1)
        assert tiers([yellow]) == [("none", "yellow")]
        assert yellow.ts == t0 + 5 * MIN_MS  # five minutes after the first reading, not eight
        wait_until(lambda: service.counters.checkpoints >= 1 and service.backlog == 0)
        service.stop()
        service = start_service(config)
        publisher.publish(series(DEV, t0 + 7 * MIN_MS, [0.8, 0.85], seq0=7))
        wait_until(lambda: service.counters.evaluated >= 2)
        publisher.publish(series(DEV, t0 + 9 * MIN_MS, [1.3], seq0=9))  # a change after the restart
        got = collector.wait_for(2)
        assert tiers(got) == [("none", "yellow"), ("yellow", "red")]  # no second yellow
        assert got[1].alert_id == yellow.alert_id
        service.stop()
    finally:
        publisher.close()
        collector.close()


def test_a_silent_device_and_a_never_seen_device_are_reported_and_clear_when_heard(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "s.db"
    make_fleet(fleet, per_district=2, interval_s=1.0)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db,
                          rules=(SILENT_RULES,), districts=("jiaojiang",))  # fmt: skip
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    service = start_service(config)
    try:
        talking, never = "dr-jj-000000", "dr-jj-000001"
        publisher.publish([(topic_of(talking), reading(talking, 0, _now_ms(), 0.1))])
        got = collector.wait_for(2, timeout_s=60)  # both silent: one never, one gone quiet
        assert {t.device_id for t in got} == {talking, never}  # huangyan is not ours
        reasons = {t.device_id: t.reason for t in got}
        assert "never heard from" in reasons[never]
        assert "silent" in reasons[talking]
        publisher.publish([(topic_of(talking), reading(talking, 1, _now_ms(), 0.1))])
        back = collector.wait_for(3)[-1]
        assert (back.device_id, back.tier_to) == (talking, "none")
    finally:
        service.stop()
        publisher.close()
        collector.close()


def test_a_silence_mutes_until_it_expires(tmp_path: Path, mosquitto: Mosquitto) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "s.db"
    make_fleet(fleet)
    t0 = _now_ms() - 60 * MIN_MS
    silence = Silence(ends_s=(t0 + 5 * MIN_MS) / 1000, device_id=DEV, comment="pump works")
    AlertStore(f"sqlite:///{db}").add_silence(silence)  # maintenance booked before the start
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    service = start_service(config)
    try:
        publisher.publish(
            series(DEV, t0, [1.2, 0.5]) + series(DEV, t0 + 10 * MIN_MS, [1.2], seq0=2)
        )
        got = collector.wait_for(3)
        assert tiers(got) == [("none", "red"), ("red", "none"), ("none", "red")]
        assert [t.notify for t in got] == [False, False, True]
    finally:
        service.stop()
        publisher.close()
        collector.close()


def test_flapping_input_is_held_and_not_re_notified(tmp_path: Path, mosquitto: Mosquitto) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "s.db"
    make_fleet(fleet)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    service = start_service(config)
    try:
        flips = [1.2, 0.5] * 10
        publisher.publish(series(DEV, _now_ms() - 60 * MIN_MS, flips))
        wait_until(lambda: service.counters.evaluated >= len(flips))
        wait_until(lambda: service.counters.checkpoints >= 1 and service.backlog == 0)
        got = collector.unique()
        # Four changes in the window mark it flapping: held at red from then on, unannounced.
        assert len(got) <= 4 < len(flips)
        assert got[-1].tier_to == "red"
        assert service.summary()["transitions"] == len(got)
    finally:
        service.stop()
        publisher.close()
        collector.close()
