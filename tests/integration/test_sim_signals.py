"""``xiuhua sim run`` stopped by SIGTERM or Ctrl-C while SWMM runs: no child left, no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim import make_fleet
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import write_registry_csv
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _default_sigint() -> None:  # a background test process may inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_kills_its_swmm_child(tmp_path: Path, signum: signal.Signals) -> None:
    fleet = tmp_path / "fleet.csv"
    # 300 manholes a district in nine districts: SWMM runs long enough to be caught at it.
    write_registry_csv(make_fleet(None, DeviceKind.DRAIN, 9, 1, nodes_per_district=300), fleet)
    cmd = [sys.executable, "-m", "xiuhua", "sim", "run", "--fleet", str(fleet),
           "--scenario", "design_storm_5y", "--out", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)  # noqa: PLW1509 - only resets a signal
    try:
        wait_until(lambda: bool(_children(proc.pid)) or proc.poll() is not None, timeout_s=120)
        workers = _children(proc.pid)
        assert workers, "the run ended before its SWMM child was seen"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    wait_until(lambda: not any(_alive(w) for w in workers), timeout_s=30)
