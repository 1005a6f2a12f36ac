"""Encode a tick's readings of a whole kind as wire-contract JSON lines, fast.

``Telemetry`` messages built one by one (a dict, a struct, an encode call per device) cost most
of a large run. Here each kind gets two msgspec structs made for its metrics, a ``Telemetry``
twin whose ``readings`` is a struct with one optional field per metric (a metric left out is
``UNSET`` and so absent), and a tick is encoded with one ``encode_lines`` call. The bytes are the
same as ``telemetry_core.schema.encode`` gives for the equivalent ``Telemetry``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from firmware_sim._simulation import FAILED_READ, KindArrays
from telemetry_core.kinds import DeviceKind
from telemetry_core.schema import CONTRACT_VERSION, Event, Severity, encode

_ENCODER = msgspec.json.Encoder()


def _structs(kind: DeviceKind, metrics: tuple[str, ...]) -> tuple[Any, Any]:
    readings = msgspec.defstruct(
        f"_{kind.value.capitalize()}Readings",
        [(m, float | msgspec.UnsetType, msgspec.UNSET) for m in metrics],
        gc=False,
    )
    message = msgspec.defstruct(
        f"_{kind.value.capitalize()}Telemetry",
        [("v", int), ("device_id", str), ("ts", int), ("seq", int), ("boot_id", str),
         ("readings", readings), ("quality", None, None), ("historical", bool, False)],
        gc=False, omit_defaults=True,  # as the contract's Telemetry: no "quality": null
    )  # fmt: skip
    return readings, message


class TickEncoder:
    """Encodes :class:`KindArrays` as ``Telemetry`` and ``Event`` JSON lines."""

    def __init__(self, boot_id: str) -> None:
        self._boot_id = boot_id
        self._structs: dict[tuple[DeviceKind, tuple[str, ...]], tuple[Any, Any]] = {}

    def encode(self, a: KindArrays, at_s: float, seq: int) -> tuple[bytes, list[bytes], int]:
        """(readings as JSON lines, failed-read events, how many readings) for one kind."""
        key = (a.kind, a.metrics)
        if key not in self._structs:
            self._structs[key] = _structs(a.kind, a.metrics)
        readings_t, message_t = self._structs[key]
        ts = ((at_s + a.clock_skew_s) * 1000).astype(np.int64).tolist()
        rows = a.values.tolist()
        odd = np.flatnonzero(a.failed | a.missing.any(axis=1)).tolist()
        built = [readings_t(*row) for row in rows]
        events = []
        for i in odd:
            if a.failed[i]:
                events.append(self._failed(a.device_ids[i], ts[i], seq))
            else:
                keep = (~a.missing[i]).tolist()
                fields = {m: v for m, v, ok in zip(a.metrics, rows[i], keep, strict=True) if ok}
                built[i] = readings_t(**fields) if fields else None
        boot, v = self._boot_id, CONTRACT_VERSION
        messages = [
            message_t(v, d, t, seq, boot, r)
            for d, t, r, failed in zip(a.device_ids, ts, built, a.failed.tolist(), strict=True)
            if r is not None and not failed
        ]
        return _ENCODER.encode_lines(messages), events, len(messages)

    def _failed(self, device_id: str, ts_ms: int, seq: int) -> bytes:
        event = Event(
            v=CONTRACT_VERSION, device_id=device_id, ts=ts_ms, seq=seq, boot_id=self._boot_id,
            type="sensor_read_failed", severity=Severity.WARNING, message=FAILED_READ,
        )  # fmt: skip
        return encode(event)
