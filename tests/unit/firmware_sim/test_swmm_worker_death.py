"""The SWMM worker dies with the process that started it, even when that one is SIGKILLed: no
child is left behind computing hydraulics for nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xiuhua.services import wait_until

REPO = Path(__file__).resolve().parents[3]
# A parent that runs a long SWMM model (a large network for 60 simulated days) and waits.
PARENT = """
import sys
from firmware_sim._network import generate_network
from firmware_sim._rainfield import RainField
from firmware_sim._swmm import build_inp, run_swmm
from tests.unit.firmware_sim.conftest import START_S, scenario

net = generate_network("linhai", 400)
inp = build_inp([net], RainField(scenario(), 0), START_S, 60 * 86400.0, None)
print("running", flush=True)
run_swmm(inp, START_S, None, 3600)
"""


def _workers_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"_swmm_worker.py" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal")
def test_a_sigkilled_parent_takes_its_swmm_worker_with_it() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "running"
        wait_until(lambda: bool(_workers_of(parent.pid)), timeout_s=60,
                   message="the SWMM worker to start")  # fmt: skip
        workers = _workers_of(parent.pid)
        # Into the run: SWMM writes its binary output as it goes (earlier, the worker would die
        # of SIGPIPE on its first print after the parent's death, which proves nothing).
        inp = Path((Path(f"/proc/{workers[0]}/cmdline").read_bytes().split(b"\0"))[2].decode())
        wait_until(lambda: inp.with_suffix(".out").is_file()
                   and inp.with_suffix(".out").stat().st_size > 100_000, timeout_s=120,
                   message=f"SWMM to be writing {inp.with_suffix('.out')}")  # fmt: skip
        assert _alive(workers[0])
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        wait_until(lambda: not _alive(workers[0]), timeout_s=30,
                   message=f"SWMM worker {workers[0]} to die with its parent")  # fmt: skip
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(30)
        if parent.stdout is not None:
            parent.stdout.close()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
