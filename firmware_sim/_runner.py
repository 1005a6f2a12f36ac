"""Run a fleet under a scenario as fast as possible and write readings and ground truth to files.

``readings.jsonl`` holds one telemetry-contract ``Telemetry`` message per device per tick (as the
device measured it: outages only cut the network, so they appear in the ground truth, not here);
``events.jsonl`` holds an ``Event`` for each failed read; ``ground_truth.jsonl`` what happened,
one raw record per device and contiguous span; ``truth_events.jsonl`` the same as merged events
per unit (a manhole for drains), which warnings are scored against. A run of ``duration_s``
reads the ticks in [start, start + duration): the truth covers exactly that span, so a fault
starting at hour 0 of the next period does not show up as a one-minute record at the end;
``network.json`` the modelled drainage network and which drain device reads which node.
"""

from __future__ import annotations

import contextlib
import gc
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from firmware_sim._encode import TickEncoder
from firmware_sim._netfile import write_network
from firmware_sim._scenario import Scenario
from firmware_sim._simulation import FleetSimulation
from telemetry_core.clock import Clock
from telemetry_core.registry import Device

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}

Progress = Callable[[int, int], None]
OUTPUT_FORMATS = ("jsonl", "jsonl.zst")
"""Output formats of readings and events: plain or zstd-compressed JSON lines."""
ZSTD_LEVEL = 1
"""Level 1: about 5x smaller JSON lines at several hundred MB/s (level 3 is slower, no smaller)."""


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"30s"``, ``"15m"``, ``"6h"`` or ``"2d"``; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"duration {text!r}: want a positive number with s, m, h or d, e.g. 6h")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run wrote."""

    devices: int
    ticks: int
    readings: int
    failed_reads: int
    truth_records: int
    wall_s: float
    readings_path: Path
    events_path: Path
    truth_path: Path
    truth_events: int = 0
    truth_events_path: Path | None = None


def _open(path: Path, fmt: str, stack: contextlib.ExitStack) -> BinaryIO:
    """A file to write JSON lines to: plain, or zstd-compressed (``jsonl.zst``)."""
    raw = stack.enter_context(path.open("wb"))
    if fmt == "jsonl":
        return raw
    writer = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw)
    return cast(BinaryIO, stack.enter_context(writer))


def _wait_until(clock: Clock, at_s: float, sleep: Callable[[float], None]) -> None:
    while (ahead := at_s - clock.now_s()) > 0:
        sleep(min(ahead, 1.0))


def run_to_files(
    devices: Sequence[Device],
    scenario: Scenario,
    *,
    seed: int,
    start_s: float,
    duration_s: float,
    out_dir: Path,
    tick_s: float = 60.0,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    fmt: str = "jsonl",
) -> RunSummary:
    """Simulate ``duration_s`` seconds and write the readings and ground truth to ``out_dir``.

    ``fmt`` is ``jsonl`` (plain JSON lines) or ``jsonl.zst`` (the same lines, zstd-compressed,
    for readings and events; the ground truth stays plain).

    Without ``clock`` the run goes as fast as possible; with one (a ``SystemClock`` for real
    time, a ``ScaledClock(60, start_s)`` for 60x) each tick waits until the clock reaches it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sim = FleetSimulation(devices, scenario, seed, start_s, tick_s=tick_s, cache_dir=cache_dir)
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format {fmt!r}: want one of {', '.join(OUTPUT_FORMATS)}")
    ticks = max(1, math.ceil(duration_s / tick_s - 1e-9))
    paths = (
        out_dir / f"readings.{fmt}", out_dir / f"events.{fmt}", out_dir / "ground_truth.jsonl"
    )  # fmt: skip
    encoder = TickEncoder(f"sim-{seed}")
    counts = [0, 0]
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        readings_file, events_file = (_open(p, fmt, stack) for p in paths[:2])
        for tick in range(ticks):
            at_s = start_s + tick * tick_s
            if clock is not None:
                _wait_until(clock, at_s, sleep)
            # Every device is read every tick, so each one's message sequence number is the tick.
            for arrays in sim.read_arrays(at_s):
                lines, events, n = encoder.encode(arrays, at_s, tick)
                readings_file.write(lines)
                events_file.write(b"".join(e + b"\n" for e in events))
                counts[0] += n
                counts[1] += len(events)
            if progress is not None:
                progress(tick + 1, ticks)
            if tick == 0:
                # The fleet, its models and SWMM's series live for the whole run: keeping them
                # out of the collector's scans saves about a quarter of the loop's CPU.
                gc.freeze()
                stack.callback(gc.unfreeze)
        if clock is not None:  # a paced run lasts its whole duration, past the last tick
            _wait_until(clock, start_s + duration_s, sleep)
    until_s = start_s + ticks * tick_s
    truth = sim.write_ground_truth(paths[2], until_s)
    events_path = out_dir / "truth_events.jsonl"
    n_events = sim.write_truth_events(events_path, until_s)
    write_network(devices, out_dir / "network.json")
    wall = time.perf_counter() - began
    return RunSummary(
        len(devices), ticks, counts[0], counts[1], truth, wall, *paths, n_events, events_path
    )
