"""Shared fakes for the ingester's unit tests: a fleet, messages, a source and a sink."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

import pytest

from cloud_ingest import Limits, Pipeline, SeqTracker
from cloud_ingest.errors import SinkError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry

NOW_MS = 1_764_000_000_000


@pytest.fixture
def registry() -> Registry:
    return Registry(
        [
            Device("drain-001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {}),
            Device("toilet-001", DeviceKind.TOILET, "luqiao", 28.5, 121.3, 60.0, {}),
        ]
    )


@pytest.fixture
def pipeline(registry: Registry) -> Pipeline:
    return Pipeline(registry, Limits(), SeqTracker())


@dataclass
class FakeMessage:
    """Looks like paho's MQTTMessage."""

    topic: str
    payload: bytes
    mid: int
    qos: int = 1
    dup: bool = False


@dataclass
class FakeSource:
    inbox: collections.deque[object] = field(default_factory=collections.deque)
    wake: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    acks: list[tuple[int, list[int]]] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)

    def start(self) -> None:
        self.subscribed.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        pass

    def ack_later(self, generation: int, mids: list[int]) -> None:
        self.acks.append((generation, mids))

    def publish_later(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))


class FakeSink:
    """Records bodies; ``fail`` is a list of errors to raise on the next writes, in order;
    lines containing a string in ``refuse`` make the write fail with a 400."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail: list[SinkError] = []
        self.refuse: list[str] = []
        self.closed = False

    def start(self) -> None:
        pass

    def write(self, body: bytes) -> None:
        if self.fail:
            raise self.fail.pop(0)
        text = body.decode()
        if any(bad in text for bad in self.refuse):
            raise SinkError("partial write: field type conflict", retryable=False, status=400)
        self.bodies.append(body)

    def close(self) -> None:
        self.closed = True

    @property
    def lines(self) -> list[str]:
        return [line for body in self.bodies for line in body.decode().split("\n")]
