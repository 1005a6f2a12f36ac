"""Helpers shared by tests: deadline-based polling and the types of the server fixtures.

``wait_until`` polls a condition until a deadline and returns as soon as it holds; use it
instead of fixed sleeps. Annotate factory fixtures with the aliases below, for example
``def test_x(mosquitto_factory: MosquittoFactory) -> None``.
"""

from collections.abc import Callable

from xiuhua.services import InfluxDB, Mosquitto, VictoriaMetrics, WaitTimeoutError, wait_until

MosquittoFactory = Callable[..., Mosquitto]
"""``mosquitto_factory(**kwargs)``: a fresh started broker; kwargs go to :class:`Mosquitto`."""

InfluxFactory = Callable[..., InfluxDB]
"""``influxdb_factory(**kwargs)``: a fresh started influxd; kwargs go to :class:`InfluxDB`."""

__all__ = [
    "InfluxDB",
    "InfluxFactory",
    "Mosquitto",
    "MosquittoFactory",
    "VictoriaMetrics",
    "WaitTimeoutError",
    "wait_until",
]
