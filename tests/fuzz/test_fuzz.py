"""The fuzz targets, briefly, inside ``make test``; and every seed and past finding replayed.

``make fuzz`` runs them for longer (``FUZZ_SECONDS``). A finding is copied into
``tests/fuzz/regressions/<target>/`` with its fix, and replayed here from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import fuzz_alerting, fuzz_edge_commands, fuzz_ingest, fuzz_sink_reply
from tests.fuzz.run import TARGETS, run_target, seed_inputs

ONE_INPUT: dict[str, Callable[[bytes], None]] = {
    "ingest": fuzz_ingest.one_input,
    "alerting": fuzz_alerting.one_input,
    "edge_commands": fuzz_edge_commands.one_input,
    "sink_reply": fuzz_sink_reply.one_input,
}
# Bounded by executions (and a time cap for a loaded machine): 5-10 s a target here.
RUNS = {"ingest": 6_000, "edge_commands": 50_000, "sink_reply": 20_000, "alerting": 4_000}
CAP_S = {"ingest": 12, "edge_commands": 8, "sink_reply": 6, "alerting": 10}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_and_past_findings_pass(target: str) -> None:
    inputs = seed_inputs(target)
    assert inputs, f"no seed corpus for {target}"
    for path in inputs:
        ONE_INPUT[target](path.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_fuzz_run_finds_nothing(target: str, tmp_path: Path) -> None:
    result = run_target(target, tmp_path, seconds=CAP_S[target], runs=RUNS[target])
    log = (tmp_path / f"{target}.log").read_text(encoding="utf-8")
    assert result.findings == [], log[-4000:]
    assert result.exit_code == 0, log[-4000:]
    assert result.executions > 0
    assert result.coverage > 0
