"""The alerting service's integration tests: each gets a private broker (retained statuses of
one test must not reach another's service)."""

from __future__ import annotations

import pytest

from tests.helpers import MosquittoFactory
from xiuhua.services import Mosquitto


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A private broker in place of the session's shared one."""
    return mosquitto_factory()
