"""A signal to ``xiuhua demo`` leaves nothing behind: no child, grandchild or temporary folder.

Every process the demo starts inherits a unique environment variable, so the test finds them
in ``/proc`` wherever they are, even reparented to init after the demo died
(:func:`tests.helpers.tagged_pids`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

from tests.helpers import WaitTimeoutError, tagged_pids, wait_until
from xiuhua._children import remove_stale_folders

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STARTED = "readings stored so far"
SERVERS_UP = "Mosquitto mqtt://"


def _start_demo(tmp_path: Path, tag: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "demo.out"
    env = os.environ | {"XIUHUA_TEST_TAG": tag, "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "xiuhua", "demo", "--duration", "600s", "--devices", "6"]
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
    return proc, out


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _survivors(tag: str) -> str:
    """What is left of a tagged run, one ``pid: command line`` per process (for a failure)."""
    lines = []
    for pid in sorted(tagged_pids(tag)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        lines.append(f"{pid}: {b' '.join(argv).decode(errors='replace')[:200]}")
    return "\n".join(lines)


def _demo_folders(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("xiuhua-demo-*"))


@pytest.mark.parametrize(
    ("marker", "signum"),
    [
        (STARTED, signal.SIGTERM),
        (SERVERS_UP, signal.SIGTERM),  # while the gateway runs SWMM: its worker must go too
        (STARTED, signal.SIGINT),
    ],
    ids=["sigterm-running", "sigterm-starting", "sigint-running"],
)
def test_a_stop_signal_stops_every_child_and_removes_the_folder(
    tmp_path: Path, marker: str, signum: signal.Signals
) -> None:
    tag = uuid4().hex
    demo, out = _start_demo(tmp_path, tag)
    try:
        wait_until(lambda: marker in _text(out) or demo.poll() is not None, timeout_s=180)
        assert demo.poll() is None, _text(out)
        # The broker, the database, the ingester and (by now, or soon) the gateway.
        wait_until(lambda: len(tagged_pids(tag) - {demo.pid}) >= 3, timeout_s=30)
        assert _demo_folders(tmp_path), "the demo works in a temporary folder"
        demo.send_signal(signum)
        code = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert code == 128 + signum, _text(out)
    wait_until(lambda: not tagged_pids(tag), timeout_s=30)
    assert _demo_folders(tmp_path) == [], _text(out)
    assert "Traceback" not in _text(out), _text(out)


def test_children_die_with_a_killed_demo(tmp_path: Path) -> None:
    tag = uuid4().hex
    demo, out = _start_demo(tmp_path, tag)
    try:
        wait_until(lambda: STARTED in _text(out) or demo.poll() is not None, timeout_s=180)
        assert demo.poll() is None, _text(out)
        children = tagged_pids(tag) - {demo.pid}
        assert len(children) >= 5, children  # mosquitto, influxd, ingester, alerting, gateway
    finally:
        demo.kill()
        demo.wait()
    try:
        wait_until(lambda: not tagged_pids(tag), timeout_s=60)
    except WaitTimeoutError as exc:
        raise AssertionError(f"left behind by a killed demo:\n{_survivors(tag)}") from exc
    # No time to clean up: the next demo removes the folder of this dead one (and only that).
    (folder,) = _demo_folders(tmp_path)
    (kept := tmp_path / "xiuhua-demo-kept").mkdir()  # --keep: no owner file, never removed
    assert remove_stale_folders(tmp_path) == [folder]
    assert _demo_folders(tmp_path) == [kept]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stopped_or_killed_bench_run_takes_its_benchmark_with_it(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # `xiuhua bench` runs bench/bench_*.py of the current folder: one that would run for long.
    ready = tmp_path / "ready"
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "bench_forever.py").write_text(
        f"import pathlib, time\npathlib.Path({str(ready)!r}).touch()\ntime.sleep(3600)\n",
        encoding="utf-8",
    )
    tag = uuid4().hex
    env = os.environ | {"XIUHUA_TEST_TAG": tag}
    argv = [sys.executable, "-m", "xiuhua", "bench"]
    bench = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until(ready.exists, timeout_s=60)
        assert len(tagged_pids(tag)) == 2  # xiuhua bench and its benchmark
        bench.send_signal(signum)
        code = bench.wait(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert code == (128 + signum if signum != signal.SIGKILL else -signal.SIGKILL)
    wait_until(lambda: not tagged_pids(tag), timeout_s=30)
