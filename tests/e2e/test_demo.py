"""``xiuhua demo`` runs the whole pipeline and proves that what was published was stored."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_demo_stores_every_published_reading() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xiuhua", "demo", "--duration", "8", "--devices", "6"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "devices reporting: 6 of 6" in result.stdout
    assert "missing: 0" in result.stdout
    assert "stored: 0;" not in result.stdout


def test_cli_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xiuhua", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "sim", "edge", "ingest", "services", "bench"):
        assert f"  {command} " in result.stdout
