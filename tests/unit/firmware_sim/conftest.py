"""Shared helpers for the simulator's tests: a fixed start time and small scenarios built inline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from firmware_sim import Scenario
from telemetry_core.driver import DriverError

START_S = 1_786_291_200.0
"""2026-08-10 00:00 in Taizhou (UTC+8): local hour 0 at the start."""


def scenario(**fields: Any) -> Scenario:
    """A scenario built in the test, with a name and title filled in."""
    fields.setdefault("name", "test")
    fields.setdefault("title", "test scenario")
    return Scenario.model_validate(fields)


@pytest.fixture(scope="session")
def swmm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SWMM results cache for the session, so identical models run once."""
    return tmp_path_factory.mktemp("swmm-cache")


def ok(reading: Mapping[str, float] | DriverError) -> Mapping[str, float]:
    """The reading, asserting that the read did not fail."""
    assert not isinstance(reading, DriverError), reading
    return reading
