"""``xiuhua demo`` runs the whole pipeline and proves that what was published was stored."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_demo_stores_every_published_reading_and_alert_and_shows_the_storm() -> None:
    # 10 s at 3600x: ten simulated hours ending (about) now, the scenario played from its start,
    # so the typhoon's rain (from hour 2) fills the pipes; a dry day stays below 0.1 m here.
    result = subprocess.run(
        [sys.executable, "-m", "xiuhua", "demo", "--duration", "10s", "--devices", "6",
         "--scenario", "typhoon_rainstorm", "--speed", "3600"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "devices reporting: 6 of 6" in result.stdout
    assert "missing: 0" in result.stdout
    assert "stored: 0;" not in result.stdout
    peak = re.search(r"highest drain level in the run: ([0-9.]+) m", result.stdout)
    assert peak is not None, result.stdout
    assert float(peak.group(1)) > 0.3, result.stdout
    # The alerting service ran beside the ingester: what it published landed in alert_events.
    # Each device's offline status, when the gateway stops, raises device.offline: all six (the
    # gateway waits wall seconds for their acks, even on a sped-up clock).
    landed = re.search(
        r"published by the alerting service: ([0-9,]+) distinct transitions; "
        r"stored: ([0-9,]+); missing: 0",
        result.stdout,
    )
    assert landed is not None, result.stdout
    assert landed.group(1) == landed.group(2), result.stdout
    assert int(landed.group(1).replace(",", "")) > 0, result.stdout
    by_rule = re.search(r"by rule: .*device\.offline (\d+)", result.stdout)
    assert by_rule is not None, result.stdout
    assert int(by_rule.group(1)) == 6, result.stdout
    assert re.search(r"alerts \d+$", result.stdout, re.MULTILINE), result.stdout  # the live view


def test_cli_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xiuhua", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "sim", "edge", "ingest", "services", "bench"):
        assert f"  {command} " in result.stdout
