"""False-flag rate and recall of the edge agent's spike flags (not a test; prints figures).

Seeded Gaussian noise around 1.0 m (``level_m``, resolution from the kinds table), N samples a
case, through ``MedianFilter`` with the default window 3: the share of plain samples flagged
``spike_filtered``, and the share of injected spikes (max(10 sigma, 20 resolutions), every 50
samples) flagged within two samples; and the filter's cost per sample of a drain node (its
eight metrics).

    .venv/bin/python bench/bench_spike_flags.py [--n 20000]
"""

from __future__ import annotations

import argparse
import random
import time

from edge_agent import MedianFilter
from telemetry_core.kinds import kind_spec

RES = kind_spec("drain").metrics["level_m"].resolution
CASES = {
    "noise 0.1 res": (0.1 * RES, 0.0),
    "noise 1 res": (RES, 0.0),
    "noise 3 res": (3 * RES, 0.0),
    "ramp 0.4 res/sample, noise 1 res": (RES, 0.4 * RES),
    "ramp 3 res/sample, noise 1 res": (RES, 3 * RES),
}


def flags(values: list[float]) -> list[bool]:
    """Whether each sample's output carried the spike flag."""
    median = MedianFilter(3, floors={"level_m": RES})
    return [bool(median.update_flagged({"level_m": v})[1]) for v in values]


def measure(n: int, sigma: float, slope: float) -> tuple[float, float]:
    """(false-flag rate on plain samples, recall of injected spikes)."""
    rng = random.Random(1)
    plain = [1.0 + slope * i + rng.gauss(0.0, sigma) for i in range(n)]
    false_rate = sum(flags(plain)) / n
    spiked = list(plain)
    spikes = list(range(40, n - 5, 50))
    for i in spikes:
        spiked[i] += max(10 * sigma, 20 * RES)
    found = flags(spiked)
    return false_rate, sum(any(found[i : i + 3]) for i in spikes) / len(spikes)


def cost_us(samples: int = 5000) -> float:
    """Microseconds per ``update_flagged`` of a drain node's eight metrics (quiet noise)."""
    metrics = kind_spec("drain").metrics
    floors = {name: spec.resolution for name, spec in metrics.items()}
    rng = random.Random(2)
    rows = [{m: 1.0 + rng.gauss(0.0, floors[m]) for m in metrics} for _ in range(samples)]
    median = MedianFilter(3, floors=floors)
    began = time.perf_counter()
    for row in rows:
        median.update_flagged(row)
    return (time.perf_counter() - began) / samples * 1e6


def main() -> None:
    """Print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="--n 4000")
    args = parser.parse_args()
    n = 4_000 if args.quick else args.n
    for name, (sigma, slope) in CASES.items():
        false_rate, recall = measure(n, sigma, slope)
        print(f"{name:36s} false flags {false_rate:7.3%}   spikes caught {recall:6.1%}")
    print(f"cost: {cost_us():.0f} us per drain sample (8 metrics, window 3)")


if __name__ == "__main__":
    main()
