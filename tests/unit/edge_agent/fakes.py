"""Fakes for the edge agent's unit tests: a scripted driver and an in-memory transport."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from edge_agent import Connected, Disconnected, Published, Received, TransportEvent
from telemetry_core.driver import DriverError
from telemetry_core.kinds import DeviceKind


class ScriptedDriver:
    """A drain node whose readings come from a function of time (or raise ``DriverError``)."""

    def __init__(
        self,
        device_id: str,
        level: Callable[[float], float | None],
        extra: Mapping[str, float] | None = None,
    ) -> None:
        self._device_id = device_id
        self._level = level
        self._extra = dict(extra or {})

    @property
    def device_id(self) -> str:
        """The device read."""
        return self._device_id

    @property
    def kind(self) -> DeviceKind:
        """A drain node."""
        return DeviceKind.DRAIN

    def read(self, at_s: float) -> Mapping[str, float]:
        """``level_m`` from the script; ``None`` from the script means the sensor failed."""
        value = self._level(at_s)
        if value is None:
            raise DriverError(self._device_id, "level sensor timeout", "level_m")
        return {"level_m": value, **self._extra}


@dataclass
class FakeTransport:
    """Records publishes; the test decides when the broker connects, acks or drops."""

    published: list[tuple[int, str, bytes, bool]] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    pending: list[TransportEvent] = field(default_factory=list)
    started: bool = False
    stopped: bool = False
    wakes: int = 0
    _mid: int = 0

    def start(self) -> None:
        self.started = True

    def stop(self, timeout_s: float) -> None:  # noqa: ARG002 - the port's signature
        self.stopped = True

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        self._mid += 1
        self.published.append((self._mid, topic, payload, retain))
        return self._mid

    def subscribe(self, topics: Sequence[str]) -> None:
        self.subscribed.extend(topics)

    def events(self, timeout_s: float) -> list[TransportEvent]:  # noqa: ARG002 - never blocks
        out, self.pending = self.pending, []
        return out

    def wake(self) -> None:
        self.wakes += 1

    # -- test controls ---------------------------------------------------------------------

    def connect(self) -> None:
        self.pending.append(Connected(session_present=True))

    def disconnect(self) -> None:
        self.pending.append(Disconnected("test"))

    def ack_all(self, ok: bool = True) -> None:
        acked = {e.mid for e in self.pending if isinstance(e, Published)}
        self.pending.extend(
            Published(mid, ok, "Success" if ok else "Not authorized")
            for mid, *_ in self.published
            if mid not in acked
        )

    def command(self, topic: str, payload: bytes) -> None:
        self.pending.append(Received(topic, payload))

    def on_channel(self, channel: str) -> list[bytes]:
        return [p for _, t, p, _ in self.published if t.endswith("/" + channel)]


class LinkDriver(ScriptedDriver):
    """A scripted drain node that is also a ``LinkProbe``: ``link`` says when its uplink works."""

    def __init__(
        self,
        device_id: str,
        level: Callable[[float], float | None],
        link: Callable[[float], bool | None],
    ) -> None:
        super().__init__(device_id, level)
        self._link = link
        self.probed = 0

    def link_up(self, at_s: float) -> bool:
        """The script's answer; ``None`` from the script means the probe itself failed."""
        self.probed += 1
        up = self._link(at_s)
        if up is None:
            raise DriverError(self.device_id, "modem does not answer")
        return up
