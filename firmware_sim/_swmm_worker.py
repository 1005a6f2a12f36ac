"""Child-process entry point: run one SWMM model with pyswmm and save its series as ``.npz``.

pyswmm (the SWMM engine underneath) holds global state, so only one simulation may run per
process; the parent starts this module with ``python .../_swmm_worker.py IN.inp OUT.npz``.
Exit code 0 on success; otherwise the error is on stderr.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - SWMM times are naive local clock times


def _series(out_path: Path) -> dict[str, np.ndarray]:
    from pyswmm import Output
    from swmm.toolkit.shared_enum import LinkAttribute, NodeAttribute

    with Output(str(out_path)) as out:
        nodes, links = list(out.nodes), list(out.links)
        times: list[datetime] = list(out.times)
        n_periods = len(times)

        def nodes_at(attr: NodeAttribute) -> np.ndarray:
            rows = (out.node_attribute(attr, k) for k in range(n_periods))
            return np.array([[row[n] for n in nodes] for row in rows])

        def links_at(attr: LinkAttribute) -> np.ndarray:
            rows = (out.link_attribute(attr, k) for k in range(n_periods))
            return np.array([[row[n] for n in links] for row in rows])

        return {
            "node_names": np.array(nodes),
            "link_names": np.array(links),
            "naive_s": np.array([(t - _EPOCH).total_seconds() for t in times]),
            "depth_m": nodes_at(NodeAttribute.INVERT_DEPTH),
            "flooding_m3s": nodes_at(NodeAttribute.FLOODING_LOSSES),
            "flow_m3s": links_at(LinkAttribute.FLOW_RATE),
            "velocity_ms": links_at(LinkAttribute.FLOW_VELOCITY),
        }


PARENT_ENV = "XIUHUA_SWMM_PARENT"
"""The parent's pid, so that a parent already gone when the death signal is armed is seen."""
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Be killed when the process that started us dies, SIGKILL included (Linux).

    SWMM runs in C for minutes without returning to Python, so no Python watchdog could run;
    the kernel's parent-death signal needs none. It fires when the parent *thread* ends, and the
    parent's thread waits in ``subprocess.run`` for as long as we run, so only its death ends us.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            sys.stderr.write(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(err)}\n")
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and os.getppid() != int(expected):
        sys.exit("the process that started this SWMM run is gone")


def main(argv: list[str]) -> int:
    """Run the model at ``argv[0]`` and write its series to ``argv[1]``."""
    from pyswmm import Simulation

    die_with_parent()
    inp, target = Path(argv[0]), Path(argv[1])
    with Simulation(str(inp)) as sim:
        sim.execute()
    arrays = _series(inp.with_suffix(".out"))
    np.savez_compressed(target, **arrays)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
