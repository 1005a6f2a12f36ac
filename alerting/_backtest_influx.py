"""History from InfluxDB (InfluxQL over HTTP), as the ingester stored it, back into messages.

One query per measurement and time window (an hour by default): the readings of each device
kind, ``device_events`` and ``device_status``. Each row becomes the message the ingester
stored: the kind's metrics become ``readings``, ``<metric>__q`` fields the ``quality`` flags,
``historical`` stays, and the boot id (not stored) is a constant: only event time matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import httpx

from alerting._backtest import Item
from alerting.errors import InfluxHistoryError
from telemetry_core.kinds import kind_spec
from telemetry_core.registry import Registry
from telemetry_core.schema import CONTRACT_VERSION, Event, Severity, Status, Telemetry
from telemetry_core.settings import InfluxSettings
from telemetry_core.topics import Channel, Topic

WINDOW_S: Final = 3600.0
_BOOT: Final = "backtest"
_SKIP: Final = frozenset({"time", "device_id", "district", "kind", "seq", "historical"})


class InfluxHistory:
    """Reads the stored history of a fleet from an InfluxDB 1.x database."""

    def __init__(self, settings: InfluxSettings, registry: Registry) -> None:
        auth = None
        if settings.username:
            secret = settings.password.get_secret_value() if settings.password else ""
            auth = (settings.username, secret)
        self._client = httpx.Client(base_url=settings.url, auth=auth, timeout=settings.timeout_s)
        self._db = settings.database
        self._registry = registry
        self._kinds = sorted({d.kind for d in registry}, key=lambda k: k.value)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def items(self, from_ms: int, to_ms: int, window_s: float = WINDOW_S) -> Iterator[Item]:
        """Every stored reading, event and status in ``[from, to)``, in event-time order."""
        step = int(window_s * 1000)
        for start in range(from_ms, to_ms, step):
            end = min(start + step, to_ms)
            window = [*self._readings(start, end), *self._events(start, end)]
            window += self._statuses(start, end)
            window.sort(key=lambda item: item[0])
            yield from window

    def _rows(self, measurement: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        # The measurement is one of ours (a kind, device_events, device_status), never input.
        q = f'SELECT * FROM "{measurement}" WHERE time >= {start}ms AND time < {end}ms'  # noqa: S608
        params = {"db": self._db, "q": q, "epoch": "ms", "chunked": "true", "chunk_size": "10000"}
        try:
            reply = self._client.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxHistoryError(f"{q}: {exc}") from exc
        if reply.status_code != 200:
            raise InfluxHistoryError(f"{q}: HTTP {reply.status_code}: {reply.text[:300]}")
        for chunk in reply.text.splitlines():
            for result in json.loads(chunk).get("results", []):
                if "error" in result:
                    raise InfluxHistoryError(f"{q}: {result['error']}")
                for series in result.get("series", []):
                    columns = series["columns"]
                    for values in series["values"]:
                        yield dict(zip(columns, values, strict=True))

    def _topic(self, row: Mapping[str, Any], channel: Channel) -> Topic | None:
        device = self._registry.get(str(row.get("device_id")))
        if device is None:
            return None
        return Topic(device.district, device.kind, device.device_id, channel)

    def _readings(self, start: int, end: int) -> Iterator[Item]:
        for kind in self._kinds:
            metrics = kind_spec(kind).metrics
            for row in self._rows(kind.value, start, end):
                topic = self._topic(row, Channel.TELEMETRY)
                msg = _telemetry(row, metrics) if topic else None
                if topic is not None and msg is not None:
                    yield msg.ts, topic, msg

    def _events(self, start: int, end: int) -> Iterator[Item]:
        for row in self._rows("device_events", start, end):
            topic = self._topic(row, Channel.EVENT)
            if topic is None:
                continue
            msg = Event(
                v=CONTRACT_VERSION, device_id=topic.device_id, ts=int(row["time"]),
                seq=int(row.get("seq") or 0), boot_id=_BOOT, type=str(row.get("type") or "event"),
                severity=Severity(row.get("severity") or "info"), metric=row.get("metric"),
                value=row.get("value"), message=str(row.get("message") or "")[:512],
                historical=bool(row.get("historical")),
            )  # fmt: skip
            yield msg.ts, topic, msg

    def _statuses(self, start: int, end: int) -> list[Item]:
        out: list[Item] = []
        for row in self._rows("device_status", start, end):
            topic = self._topic(row, Channel.STATUS)
            if topic is None or row.get("state") not in ("online", "offline"):
                continue
            msg = Status(
                v=CONTRACT_VERSION, device_id=topic.device_id, ts=int(row["time"]),
                boot_id=str(row.get("boot_id") or _BOOT), state=row["state"],
                reason=str(row.get("reason") or "")[:512],
            )  # fmt: skip
            out.append((msg.ts, topic, msg))
        return out


def _telemetry(row: Mapping[str, Any], metrics: Mapping[str, object]) -> Telemetry | None:
    readings: dict[str, float] = {}
    quality: dict[str, str] = {}
    for name, value in row.items():
        if value is None or name in _SKIP:
            continue
        if name.endswith("__q"):
            quality[name[:-3]] = str(value)
        elif name in metrics and isinstance(value, int | float) and not isinstance(value, bool):
            readings[name] = float(value)
    if not readings:
        return None  # a row of another measurement's fields only (never for a stored reading)
    return Telemetry(
        v=CONTRACT_VERSION, device_id=str(row["device_id"]), ts=int(row["time"]),
        seq=int(row.get("seq") or 0), boot_id=_BOOT, readings=readings,
        quality=quality or None, historical=bool(row.get("historical")),
    )  # fmt: skip
