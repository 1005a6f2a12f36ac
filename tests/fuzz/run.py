"""Run the fuzz targets and say what each run covered: ``python -m tests.fuzz.run``.

Each target runs under libFuzzer (atheris) on a working corpus seeded from
``tests/fuzz/corpus/<target>`` (the seeds are never modified) plus every input in
``tests/fuzz/regressions/<target>``, with the dictionary ``tests/fuzz/dicts/<target>.dict``
(the contract's names, so mutations stay near the schema). A crash leaves its input as
``<work>/<target>-crash-*``: copy it into ``tests/fuzz/regressions/<target>/`` with the fix,
and ``test_fuzz.py`` replays it on every ``make test``. Each run appends one JSON line per
target to ``<work>/history.jsonl``: executions, seconds, coverage (libFuzzer's ``cov``/``ft``),
corpus size and findings.

    make fuzz                      # FUZZ_SECONDS per target (default 300), corpus kept in .fuzz/
    python -m tests.fuzz.run --seconds 30 --work /tmp/fz ingest
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parents[1]
TARGETS: Final = {
    "ingest": "tests.fuzz.fuzz_ingest",
    "alerting": "tests.fuzz.fuzz_alerting",
    "edge_commands": "tests.fuzz.fuzz_edge_commands",
    "sink_reply": "tests.fuzz.fuzz_sink_reply",
}
_DONE: Final = re.compile(r"Done (\d+) runs in (\d+) second")
_STATS: Final = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)/")


@dataclass(frozen=True, slots=True)
class FuzzRun:
    """What one run of one target covered."""

    target: str
    executions: int
    seconds: float
    coverage: int
    features: int
    corpus: int
    findings: list[str]
    exit_code: int
    started_at: str


def seed_inputs(target: str) -> list[Path]:
    """The seed corpus and the regression inputs of ``target``."""
    dirs = [HERE / "corpus" / target, HERE / "regressions" / target]
    return sorted(
        p for d in dirs if d.is_dir() for p in d.iterdir() if p.is_file() and p.name != ".keep"
    )


def run_target(target: str, work: Path, seconds: int, runs: int | None = None) -> FuzzRun:
    """Fuzz ``target`` for ``seconds`` (or ``runs`` executions, whichever ends first)."""
    corpus = work / target
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seed_inputs(target):
        shutil.copy(seed, corpus / f"seed-{seed.parent.name}-{seed.name}")
    args = [sys.executable, "-m", TARGETS[target], f"-max_total_time={seconds}",
            f"-artifact_prefix={work}/{target}-", "-print_final_stats=1", str(corpus)]  # fmt: skip
    if runs is not None:
        args.insert(3, f"-runs={runs}")
    dictionary = HERE / "dicts" / f"{target}.dict"
    if dictionary.is_file():
        args.insert(3, f"-dict={dictionary}")
    before = set(work.glob(f"{target}-crash-*")) | set(work.glob(f"{target}-timeout-*"))
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    began = time.monotonic()
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - began
    after = set(work.glob(f"{target}-crash-*")) | set(work.glob(f"{target}-timeout-*"))
    log = proc.stderr
    (work / f"{target}.log").write_text(log, encoding="utf-8")
    done = _DONE.findall(log)
    stats = _STATS.findall(log)
    cov, ft, corp = (int(x) for x in stats[-1]) if stats else (0, 0, 0)
    return FuzzRun(
        target=target, executions=int(done[-1][0]) if done else 0, seconds=round(elapsed, 1),
        coverage=cov, features=ft, corpus=corp,
        findings=sorted(str(p) for p in after - before), exit_code=proc.returncode,
        started_at=started_at,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the targets; exit 1 if any found something."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default all)")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--runs", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--work", type=Path, default=REPO / ".fuzz", help="corpus and history")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: want {', '.join(TARGETS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    failed = False
    for target in args.targets or list(TARGETS):
        result = run_target(target, args.work, args.seconds, args.runs)
        with (args.work / "history.jsonl").open("a", encoding="utf-8") as history:
            history.write(json.dumps(asdict(result), sort_keys=True) + "\n")
        verdict = "FOUND " + ", ".join(result.findings) if result.findings else "nothing found"
        sys.stdout.write(
            f"{target}: {result.executions} executions in {result.seconds} s, cov {result.coverage}"
            f" ft {result.features}, corpus {result.corpus}: {verdict}"
            f" (log {args.work / (target + '.log')})\n"
        )
        failed |= bool(result.findings) or result.exit_code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
