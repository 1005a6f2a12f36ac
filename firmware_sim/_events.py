"""Ground truth as events: one record per thing that happened to a unit, merged across flicker.

A *unit* is what an event is counted once per: the modelled manhole (``jj-J012``) for drain
overflow and surcharge, which several sensors may read, and the device id for everything else.
The models report raw spans (one per contiguous run of minutes in a state); :func:`merge_events`
joins spans of one unit, label and detail that are less than ``gap_s`` apart (30 minutes by
default), so a manhole that overflows, drains for five minutes and overflows again is one event.
No span is dropped for being short: a short one near a neighbour joins it, an isolated one stays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import numpy as np

from firmware_sim._truth import GroundTruthRecord
from firmware_sim.errors import SimError
from telemetry_core.kinds import DeviceKind

MERGE_GAP_S = 1800.0
"""Spans of one unit and label closer than this (end to next onset) are one event."""


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """One labelled event of one unit, from ``onset_s`` until ``end_s`` (epoch seconds).

    ``peak`` is the label's measure at its worst (overflow: flooding m³/s; surcharge: depth over
    pipe diameter; odour: mg/m³; bin full and missed collection: fill %; fire: °C) and
    ``peak_at_s`` when; ``volume_m3`` is the water lost from the manhole (overflow only).
    """

    label: str
    unit: str
    device_ids: tuple[str, ...]
    district: str
    kind: str
    onset_s: float
    end_s: float
    peak: float | None = None
    peak_at_s: float | None = None
    volume_m3: float | None = None
    detail: str = ""


class _EventRow(msgspec.Struct, forbid_unknown_fields=True):
    label: str
    unit: str
    device_ids: list[str]
    district: str
    kind: str
    onset_s: float
    end_s: float
    peak: float | None
    peak_at_s: float | None
    volume_m3: float | None
    detail: str


class TruthFileError(SimError):
    """A ``truth_events.jsonl`` line that does not decode; the message names file and line."""


def _merge_two(a: TruthEvent, b: TruthEvent) -> TruthEvent:
    peak, peak_at = a.peak, a.peak_at_s
    if b.peak is not None and (peak is None or b.peak > peak):
        peak, peak_at = b.peak, b.peak_at_s
    volume = None
    if a.volume_m3 is not None or b.volume_m3 is not None:
        volume = (a.volume_m3 or 0.0) + (b.volume_m3 or 0.0)
    return replace(
        a,
        device_ids=tuple(sorted(set(a.device_ids) | set(b.device_ids))),
        end_s=max(a.end_s, b.end_s),
        peak=peak,
        peak_at_s=peak_at,
        volume_m3=volume,
    )


def merge_events(spans: Iterable[TruthEvent], gap_s: float = MERGE_GAP_S) -> list[TruthEvent]:
    """Join spans of one (unit, label, detail) whose gap is under ``gap_s``; sorted by onset.

    Each event's ``device_ids`` are sorted, so a file is the same however the fleet was ordered.
    """
    groups: dict[tuple[str, str, str], list[TruthEvent]] = {}
    for span in spans:
        groups.setdefault((span.unit, span.label, span.detail), []).append(span)
    merged: list[TruthEvent] = []
    for group in groups.values():
        group.sort(key=lambda e: (e.onset_s, e.end_s))
        current = group[0]
        for nxt in group[1:]:
            if nxt.onset_s - current.end_s < gap_s:
                current = _merge_two(current, nxt)
            else:
                merged.append(current)
                current = nxt
        merged.append(current)
    merged = [replace(e, device_ids=tuple(sorted(e.device_ids))) for e in merged]
    return sorted(merged, key=lambda e: (e.onset_s, e.unit, e.label, e.detail))


def clip_events(events: Iterable[TruthEvent], until_s: float) -> list[TruthEvent]:
    """Events that began before ``until_s``, ended there at the latest."""
    return [
        e if e.end_s <= until_s else replace(e, end_s=until_s)
        for e in events
        if e.onset_s < until_s
    ]


def event_records(events: Iterable[TruthEvent]) -> list[GroundTruthRecord]:
    """The raw per-device records of (unmerged) spans: one per device an event lists."""
    records = []
    for e in events:
        detail = e.detail
        if e.unit not in e.device_ids:  # a shared unit (a manhole): say which
            detail = f"{detail} node={e.unit}".strip()
        records += [
            GroundTruthRecord(d, DeviceKind(e.kind), e.onset_s, e.end_s, e.label, detail)
            for d in e.device_ids
        ]
    return records


def _row(e: TruthEvent) -> dict[str, object]:
    return {
        "label": e.label, "unit": e.unit, "device_ids": list(e.device_ids),
        "district": e.district, "kind": e.kind, "onset_s": e.onset_s, "end_s": e.end_s,
        "peak": e.peak, "peak_at_s": e.peak_at_s, "volume_m3": e.volume_m3, "detail": e.detail,
    }  # fmt: skip


def write_truth_events(events: Iterable[TruthEvent], path: Path) -> int:
    """Write events as JSON lines (``truth_events.jsonl``); returns how many."""
    encoder = msgspec.json.Encoder()
    rows = [encoder.encode(_row(e)) for e in events]
    path.write_bytes(b"".join(r + b"\n" for r in rows))
    return len(rows)


def load_truth_events(path: Path) -> list[TruthEvent]:
    """Read a ``truth_events.jsonl``; ``TruthFileError`` names the line that does not decode."""
    decoder = msgspec.json.Decoder(_EventRow)
    events = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise TruthFileError(f"{path}:{number}: {exc}") from exc
            fields = {f: getattr(row, f) for f in row.__struct_fields__}
            fields["device_ids"] = tuple(row.device_ids)
            events.append(TruthEvent(**fields))
    return events


@dataclass(frozen=True, slots=True)
class Span:
    """A run of ticks where a tracked condition held for row ``index``."""

    index: int
    start_s: float
    end_s: float
    peak: float
    peak_at_s: float


class SpanTracker:
    """Per row of a state array, the spans where a condition holds, with peak and peak time.

    Call :meth:`update` once per tick with the condition and the value to peak on; a span runs
    from the first tick the condition holds to the first tick it no longer does.
    """

    def __init__(self, rows: int) -> None:
        self._since = np.full(rows, np.nan)
        self._peak = np.full(rows, -np.inf)
        self._peak_at = np.full(rows, np.nan)
        self.closed: list[Span] = []

    def update(self, at_s: float, flags: np.ndarray, values: np.ndarray) -> None:
        """Record the state at tick ``at_s``."""
        open_ = ~np.isnan(self._since)
        ended = open_ & ~flags
        for i in np.flatnonzero(ended).tolist():
            self.closed.append(
                Span(i, float(self._since[i]), at_s, float(self._peak[i]), float(self._peak_at[i]))
            )
        self._since[ended] = np.nan
        began = flags & ~open_
        self._since[began] = at_s
        self._peak[began] = -np.inf
        higher = flags & (values > self._peak)
        self._peak[higher] = values[higher]
        self._peak_at[higher] = at_s

    def spans(self, until_s: float) -> list[Span]:
        """Closed spans and those still open, the open ones ending at ``until_s``."""
        still = [
            Span(i, float(self._since[i]), until_s, float(self._peak[i]), float(self._peak_at[i]))
            for i in np.flatnonzero(~np.isnan(self._since)).tolist()
        ]
        return self.closed + still


def spans_to_events(
    spans: Sequence[Span], label: str, devices: Sequence[tuple[str, str]], kind: DeviceKind,
    details: Sequence[str],
) -> list[TruthEvent]:  # fmt: skip
    """Events of per-device spans; ``devices[i]`` is (device id, district), ``details[i]`` too."""
    return [
        TruthEvent(
            label=label,
            unit=devices[s.index][0],
            device_ids=(devices[s.index][0],),
            district=devices[s.index][1],
            kind=kind.value,
            onset_s=s.start_s,
            end_s=s.end_s,
            peak=s.peak if math.isfinite(s.peak) else None,
            peak_at_s=s.peak_at_s if math.isfinite(s.peak_at_s) else None,
            detail=details[s.index],
        )
        for s in spans
    ]


@dataclass(frozen=True, slots=True)
class NodeSeries:
    """The SWMM series of the modelled manholes some devices read, for their events."""

    times_s: np.ndarray  # (T,) seconds from the scenario start, a regular report step
    flooding_m3s: np.ndarray  # (T, U) flooding per unit
    fill: np.ndarray  # (T, U) depth over the outgoing pipe's diameter
    units: tuple[str, ...]
    device_ids: tuple[tuple[str, ...], ...]
    districts: tuple[str, ...]


def _runs(flags: np.ndarray) -> list[list[tuple[int, int]]]:
    """Per column of the (T, U) ``flags``, the half-open row ranges [a, b) where it holds."""
    edge = np.zeros((1, flags.shape[1]), dtype=np.int8)
    change = np.diff(np.vstack([edge, flags.astype(np.int8), edge]), axis=0)
    out: list[list[tuple[int, int]]] = [[] for _ in range(flags.shape[1])]
    # Transposed, nonzero() walks column by column, so rises and falls pair up in order.
    rise_col, rise_row = np.nonzero(change.T == 1)
    _, fall_row = np.nonzero(change.T == -1)
    for col, a, b in zip(rise_col.tolist(), rise_row.tolist(), fall_row.tolist(), strict=True):
        out[col].append((a, b))
    return out


def node_events(
    series: NodeSeries, *, flood_m3s: float, start_s: float, period_s: float, until_s: float
) -> list[TruthEvent]:
    """Overflow (flooding above ``flood_m3s``) and surcharge (fill above 1) spans per unit.

    The series covers one scenario period; it repeats until ``until_s``. Overflow carries the
    peak flooding rate and the volume lost (flooding integrated over the span), surcharge the
    peak fill.
    """
    times = series.times_s
    step = float(times[1] - times[0]) if times.size > 1 else 60.0
    spans: list[TruthEvent] = []
    for label, flags, values in (
        ("overflow", series.flooding_m3s > flood_m3s, series.flooding_m3s),
        ("surcharge", series.fill > 1.0, series.fill),
    ):
        for col, pairs in enumerate(_runs(flags)):
            for lo, hi in pairs:
                window = values[lo:hi, col]
                top = lo + int(np.argmax(window))
                volume = float(window.sum() * step) if label == "overflow" else None
                k = 0
                while (base := start_s + k * period_s) + float(times[lo]) < until_s:
                    spans.append(
                        TruthEvent(
                            label=label,
                            unit=series.units[col],
                            device_ids=series.device_ids[col],
                            district=series.districts[col],
                            kind=DeviceKind.DRAIN.value,
                            onset_s=base + float(times[lo]),
                            end_s=base + min(float(times[lo]) + (hi - lo) * step, period_s),
                            peak=float(values[top, col]),
                            peak_at_s=base + float(times[top]),
                            volume_m3=volume,
                        )
                    )
                    k += 1
    return spans
