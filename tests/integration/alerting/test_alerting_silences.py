"""Maintenance silences added and expired with ``xiuhua alerting silence`` while the service
runs: picked up within ``silence_refresh_s``; they mute notifications, never state changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.alerting.kit import (
    Collector,
    Publisher,
    make_fleet,
    reading,
    start_service,
    topic_of,
    write_config,
)
from xiuhua.commands.alerting import app
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_silence_added_and_expired_while_running_mutes_only_its_district(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, tmp_path / "s.db",
                          silence_refresh_s=0.2)  # fmt: skip
    collector = Collector(mosquitto.host, mosquitto.port)
    service = start_service(config)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        out = _cli("silence", "add", "--district", "jiaojiang", "--rule", "test.fill",
                   "--for", "1h", "--comment", "pump works", "--config", str(config))  # fmt: skip
        assert out.startswith("silence 1: district=jiaojiang rule=test.fill")
        wait_until(lambda: len(service.silences) == 1, timeout_s=30,
                   message="the service to read the new silence")  # fmt: skip
        now = int(time.time() * 1000) + 1000  # after the silence began
        muted, loud = "dr-jj-000000", "dr-hy-000000"
        publisher.publish([(topic_of(d), reading(d, 1, now, 1.5)) for d in (muted, loud)])
        got = {t.device_id: t for t in collector.wait_for(2)}
        assert got[muted].tier_to == got[loud].tier_to == "red"  # state changes either way
        assert not got[muted].notify
        assert got[loud].notify
        assert "active" in _cli("silence", "list", "--config", str(config))

        _cli("silence", "expire", "--id", "1", "--config", str(config))
        wait_until(lambda: service.silences[0].ends_s <= time.time(), timeout_s=30,
                   message="the service to read the expired silence")  # fmt: skip
        after = int(time.time() * 1000) + 1000
        again = "dr-jj-000001"
        publisher.publish([(topic_of(again), reading(again, 1, after, 1.5))])
        [late] = [t for t in collector.wait_for(3) if t.device_id == again]
        assert late.notify
        assert "no silences in force" in _cli("silence", "list", "--config", str(config))
        assert "ended" in _cli("silence", "list", "--all", "--config", str(config))
        wait_until(lambda: "3 active alert(s)" in _cli("alerts", "--config", str(config)),
                   timeout_s=30, message="the store to hold the three alerts")  # fmt: skip
        assert "dr-hy-000000" in _cli("alerts", "--district", "huangyan", "--config", str(config))
        assert "dr-hy-000000" not in _cli("alerts", "--district", "jiaojiang", "--config",
                                           str(config))  # fmt: skip
    finally:
        publisher.close()
        service.stop()
        collector.close()
