"""Ground truth: what really happened, and when, written beside the readings to score rules."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from telemetry_core.kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class GroundTruthRecord:
    """One thing that happened to one device from ``start_s`` until ``end_s`` (epoch seconds)."""

    device_id: str
    kind: DeviceKind
    start_s: float
    end_s: float
    what: str
    detail: str = ""

    def to_json(self) -> str:
        """One JSON line."""
        row = asdict(self)
        row["kind"] = self.kind.value
        return json.dumps(row, ensure_ascii=False, sort_keys=True)


def intervals(flags: np.ndarray, times_s: np.ndarray) -> list[list[tuple[float, float]]]:
    """Per column of the (T, N) boolean ``flags``, the [start, end) spans where it holds.

    A span still open at the last row ends at the last time plus one step.
    """
    step = float(times_s[1] - times_s[0]) if times_s.size > 1 else 60.0
    padded = np.vstack(
        [np.zeros((1, flags.shape[1]), bool), flags, np.zeros((1, flags.shape[1]), bool)]
    )
    change = np.diff(padded.astype(np.int8), axis=0)
    ends_at = np.append(times_s, times_s[-1] + step)
    out: list[list[tuple[float, float]]] = [[] for _ in range(flags.shape[1])]
    # Transposed, nonzero() walks column by column, so rises and falls of a column pair up in order.
    rise_col, rise_row = np.nonzero(change.T == 1)
    _, fall_row = np.nonzero(change.T == -1)
    for col, start, end in zip(rise_col, rise_row, fall_row, strict=True):
        out[col].append((float(ends_at[start]), float(ends_at[end])))
    return out


def write_ground_truth(records: Iterable[GroundTruthRecord], path: Path) -> int:
    """Write records as JSON lines (``.jsonl``) or CSV (``.csv``); returns how many."""
    rows = sorted(records, key=lambda r: (r.start_s, r.device_id, r.what))
    if path.suffix == ".csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["device_id", "kind", "start_s", "end_s", "what", "detail"])
            for r in rows:
                writer.writerow(
                    [
                        r.device_id,
                        r.kind.value,
                        f"{r.start_s:.3f}",
                        f"{r.end_s:.3f}",
                        r.what,
                        r.detail,
                    ]
                )
    else:
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(r.to_json() + "\n" for r in rows)
    return len(rows)
