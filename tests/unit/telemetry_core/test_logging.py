"""Logging goes to the stderr of the moment, even after the one it was configured with closed."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from telemetry_core.logging import configure_logging


@pytest.fixture(autouse=True)
def _reset_structlog() -> object:
    yield None
    structlog.reset_defaults()


def test_logs_follow_stderr_when_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", json=True)
    log = structlog.get_logger()
    log.info("first_event", n=1)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("second_event", n=2)
    assert '"event": "second_event"' in second.getvalue()


def test_level_filters_and_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("warning", json=True)
    structlog.get_logger().info("quiet")
    structlog.get_logger().warning("loud", device_id="dr-jj-000001")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert '"device_id": "dr-jj-000001"' in lines[0]
    assert '"level": "warning"' in lines[0]
