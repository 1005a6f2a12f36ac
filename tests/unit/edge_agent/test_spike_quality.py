"""Spike flags mean spikes: false-flag rate on plain noise and on a noisy ramp, and recall.

Seeded Gaussian noise, 20,000 samples per case, through the agent's filter with the default
window (3) and ``level_m``'s floor from the kinds table (its resolution). The simulator's
spike fault adds 20 resolutions; real spikes here are 10 noise deviations or 20 resolutions,
whichever is larger.
"""

from __future__ import annotations

import random

import pytest

from edge_agent import MedianFilter
from telemetry_core.kinds import KINDS, kind_spec

RES = kind_spec("drain").metrics["level_m"].resolution
N = 20_000
WINDOW = 3


def _flags(values: list[float], window: int = WINDOW) -> list[bool]:
    median = MedianFilter(window, floors={"level_m": RES})
    return [bool(median.update_flagged({"level_m": v})[1]) for v in values]


def _signal(sigma: float, slope: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 + slope * i + rng.gauss(0.0, sigma) for i in range(N)]


CASES = {
    "quiet sensor (noise 0.1 resolution)": (0.1 * RES, 0.0),
    "noise of one resolution": (RES, 0.0),
    "noise of three resolutions": (3 * RES, 0.0),
    "noisy ramp (rising 0.4 resolution a sample)": (RES, 0.4 * RES),
    "noisy fast ramp (rising 3 resolutions a sample)": (RES, 3 * RES),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plain_noise_and_noisy_ramps_are_flagged_under_one_percent(case: str) -> None:
    sigma, slope = CASES[case]
    flags = _flags(_signal(sigma, slope, seed=list(CASES).index(case)))
    rate = sum(flags) / len(flags)
    assert rate < 0.01, f"{case}: {rate:.2%} of plain samples flagged as spikes"


@pytest.mark.parametrize("case", list(CASES))
def test_real_spikes_are_caught_and_nothing_else(case: str) -> None:
    sigma, slope = CASES[case]
    values = _signal(sigma, slope, seed=7)
    rng = random.Random(11)
    spikes = list(range(40, N - 5, 50))
    for i in spikes:
        values[i] += rng.choice((-1, 1)) * max(10 * sigma, 20 * RES)
    flags = _flags(values)
    caught = sum(any(flags[i : i + WINDOW // 2 + 2]) for i in spikes)
    near = {j for i in spikes for j in range(i, i + WINDOW // 2 + 2)}
    false = sum(f for j, f in enumerate(flags) if j not in near)
    assert caught / len(spikes) >= 0.95, f"{case}: caught {caught} of {len(spikes)}"
    assert false / (N - len(near)) < 0.01, f"{case}: {false} false flags"


def test_a_wider_window_hides_and_flags_two_sample_spikes() -> None:
    values = _signal(RES, 0.0, seed=3)
    spikes = list(range(40, N - 5, 50))
    for i in spikes:
        values[i] += 20 * RES
        values[i + 1] += 20 * RES
    flags = _flags(values, window=5)
    assert sum(any(flags[i : i + 4]) for i in spikes) / len(spikes) >= 0.95


def test_every_metric_of_every_kind_has_a_resolution_for_the_spike_floor() -> None:
    missing = [m.name for k in KINDS.values() for m in k.metrics.values() if m.resolution <= 0]
    assert missing == []
