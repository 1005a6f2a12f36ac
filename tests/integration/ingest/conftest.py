"""The ingester's integration tests: each gets a private broker.

The ingester takes retained statuses, so retained messages left on a shared broker by another
test would reach it and skew its counts.
"""

from __future__ import annotations

import pytest

from tests.helpers import MosquittoFactory
from xiuhua.services import Mosquitto


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """A private broker in place of the session's shared one."""
    return mosquitto_factory()
