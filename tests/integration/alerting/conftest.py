"""The alerting service's integration tests: each gets a private broker (retained statuses of
one test must not reach another's service)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import MosquittoFactory
from xiuhua.services import Mosquitto


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A private broker in place of the session's shared one."""
    return mosquitto_factory()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The state store's URL: a SQLite file, then the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alerts.db'}"
    else:
        yield request.getfixturevalue("postgres_url")
