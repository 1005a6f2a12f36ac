"""What an operator watches and meets: the service's /metrics, and a bad rules file at start."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    series,
    service_subprocess,
    start_service,
    topic_of,
    write_config,
)
from xiuhua.services import Mosquitto, free_port, wait_until

pytestmark = pytest.mark.integration
DEV = "dr-jj-000000"


def _samples(port: int) -> dict[str, float]:
    """``name{labels}`` -> value, from the text exposition format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_the_metrics_endpoint_counts_what_the_service_did(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    port = free_port()
    config = write_config(
        tmp_path / "alerting.toml", fleet, mosquitto.url, tmp_path / "s.db", metrics_port=port
    )
    collector = Collector(mosquitto.host, mosquitto.port)
    service = start_service(config)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        t0 = int(time.time() * 1000) - 30 * MIN_MS
        publisher.publish([*series(DEV, t0, [0.5, 1.2]), (topic_of(DEV), b"{not json")])
        collector.wait_for(1)

        def counted() -> bool:
            s = _samples(port)
            return (
                s.get("xiuhua_alerting_received_total", 0) >= 3
                and s.get('xiuhua_alerting_transitions_total{tier="red"}', 0) >= 1
                and s.get('xiuhua_alerting_rejected_total{reason="malformed_json"}', 0) >= 1
                and s.get("xiuhua_alerting_checkpoints_total", 0) >= 1
            )

        wait_until(counted, timeout_s=60, message="the counters of 3 messages, 1 red, 1 reject")
        s = _samples(port)
        assert s["xiuhua_alerting_evaluated_total"] >= 2  # the two readings; the reject is not
        assert s["xiuhua_alerting_evaluated_total"] <= s["xiuhua_alerting_received_total"]
        assert s["xiuhua_alerting_late_readings_total"] == 0
        assert "xiuhua_alerting_backlog" in s
        assert "xiuhua_alerting_state_bytes" in s
    finally:
        publisher.close()
        service.stop()
        collector.close()


def test_a_bad_rules_file_stops_the_start_naming_file_rule_and_field(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.csv"
    make_fleet(fleet)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nkind: drain\nrules:\n  - name: drain.x\n    category: overload\n"
        "    metric: fill_ratio\n    tiers: [{tier: yellow, raise: {above: high}}]\n",
        encoding="utf-8",
    )
    config = write_config(
        tmp_path / "alerting.toml", fleet, mosquitto.url, tmp_path / "s.db", rules=(bad,)
    )
    log = tmp_path / "alerting.log"
    proc = service_subprocess(config, log)
    assert proc.wait(timeout=120) == 2
    text = log.read_text(encoding="utf-8")
    assert str(bad) in text
    assert "rule 'drain.x'" in text
    assert "field 'tiers[0].raise.above'" in text
    assert "Traceback" not in text
