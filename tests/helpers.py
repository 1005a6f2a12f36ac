"""Helpers shared by tests: deadline-based polling and the types of the server fixtures.

``wait_until`` polls a condition until a deadline and returns as soon as it holds; use it
instead of fixed sleeps. Annotate factory fixtures with the aliases below, for example
``def test_x(mosquitto_factory: MosquittoFactory) -> None``.
"""

from collections.abc import Callable
from pathlib import Path

from xiuhua.services import InfluxDB, Mosquitto, VictoriaMetrics, WaitTimeoutError, wait_until

MosquittoFactory = Callable[..., Mosquitto]
"""``mosquitto_factory(**kwargs)``: a fresh started broker; kwargs go to :class:`Mosquitto`."""

InfluxFactory = Callable[..., InfluxDB]
"""``influxdb_factory(**kwargs)``: a fresh started influxd; kwargs go to :class:`InfluxDB`."""


def tagged_pids(tag: str) -> set[int]:
    """Live processes whose environment carries ``XIUHUA_TEST_TAG=<tag>``.

    Start a command with that variable set and every process it starts inherits it, so this
    finds them all, even reparented to init after their parent died.
    """
    needle = f"XIUHUA_TEST_TAG={tag}".encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in environ.split(b"\0") and state != "Z":
            found.add(int(entry.name))
    return found


__all__ = [
    "InfluxDB",
    "InfluxFactory",
    "Mosquitto",
    "MosquittoFactory",
    "VictoriaMetrics",
    "WaitTimeoutError",
    "tagged_pids",
    "wait_until",
]
