"""`xiuhua bench --quick` passes ``--quick`` to every benchmark: each one must take it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_every_benchmark_accepts_quick(script: str) -> None:
    # --help parses nothing else: an option the parser lacks would not show in its help.
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout, f"{script} does not take --quick, which xiuhua bench passes"
