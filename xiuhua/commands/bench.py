"""``xiuhua bench``: run the benchmarks in ``bench/`` and print their figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from xiuhua._signals import Interrupted, interrupt_on_signals
from xiuhua.services import die_with_parent

app = typer.Typer(help="Run the benchmarks in bench/ one after another; each prints its figures.")


def _bench_dir() -> Path:
    return Path.cwd() / "bench"


@app.callback(invoke_without_command=True)
def bench(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="NAME",
            help="Run only these benchmarks (e.g. --only ingest --only edge).",
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller workloads, for a first look in a minute.")
    ] = False,
) -> None:
    """Run every ``bench/bench_*.py`` (or the ones named) from the repository's root."""
    scripts = sorted(_bench_dir().glob("bench_*.py"))
    if not scripts:
        typer.echo("no benchmarks found: run this from the repository's root", err=True)
        raise typer.Exit(2)
    wanted = {name.removeprefix("bench_") for name in only or []}
    chosen = [s for s in scripts if not wanted or s.stem.removeprefix("bench_") in wanted]
    if wanted and len(chosen) != len(wanted):
        known = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
        typer.echo(f"unknown benchmark in {sorted(wanted)}; known: {known}", err=True)
        raise typer.Exit(2)
    try:
        with interrupt_on_signals():
            failed = [script.name for script in chosen if not _run(script, quick)]
    except Interrupted as exc:  # subprocess.run killed the running benchmark on the way out
        typer.echo(f"{exc}: benchmarks stopped", err=True)
        raise typer.Exit(exc.exit_code) from None
    if failed:
        typer.echo(f"benchmarks that failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _run(script: Path, quick: bool) -> bool:
    typer.echo(f"\n=== {script.stem} ===", err=True)
    started = time.monotonic()
    argv = [sys.executable, str(script), *(["--quick"] if quick else [])]
    parent = os.getpid()
    result = subprocess.run(
        argv,
        check=False,
        cwd=script.parent.parent,
        preexec_fn=lambda: die_with_parent(parent),  # fork-safe: prctl, getppid, kill only
    )
    elapsed_s = time.monotonic() - started
    typer.echo(f"=== {script.stem}: {elapsed_s:.0f} s, exit {result.returncode}", err=True)
    return result.returncode == 0
