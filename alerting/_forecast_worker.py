"""Child-process entry point of the forecast: runs SWMM models one after another on request.

SWMM holds global state (one simulation per process) and runs in C for as long as a model
takes, so the engine keeps it in this child: ``python .../_forecast_worker.py``, one JSON request
per line on stdin, one JSON reply per line on stdout.

Request: ``{"inp": path, "report": [node ids]}``. The model at ``inp`` is run to its end (its
``[FILES]`` section says which hotstart file it starts from and saves); with ``report``, the
reply holds each node's water depth (m over its invert) and flooding (m³/s) every 60 s of model
time: ``{"ok": true, "depth": {id: [...]}, "flooding": {id: [...]}}``. A failure replies
``{"ok": false, "error": "..."}`` and the worker goes on. End of stdin ends it; so does the death
of the parent (``PR_SET_PDEATHSIG``: a SIGKILLed engine leaves no SWMM behind).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

PARENT_ENV = "XIUHUA_FORECAST_PARENT"
_PR_SET_PDEATHSIG = 1
REPORT_S = 60


def die_with_parent() -> None:
    """Be killed when the thread that started us ends (Linux), SIGKILL of the process included;
    a parent already gone when the signal is armed is seen through ``PARENT_ENV``."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            sys.stderr.write(f"prctl(PR_SET_PDEATHSIG): {os.strerror(ctypes.get_errno())}\n")
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and os.getppid() != int(expected):
        sys.exit("the engine that started this forecast worker is gone")


def run(inp: Path, report: list[str]) -> dict[str, Any]:
    """Run one model; the reported nodes' depth and flooding every ``REPORT_S``."""
    from pyswmm import Nodes, Simulation

    depth: dict[str, list[float]] = {n: [] for n in report}
    flooding: dict[str, list[float]] = {n: [] for n in report}
    with Simulation(str(inp)) as sim:
        if not report:
            sim.execute()
            return {"ok": True, "depth": depth, "flooding": flooding}
        nodes = Nodes(sim)
        watched = [(n, nodes[n]) for n in report]
        sim.step_advance(REPORT_S)
        for _ in sim:
            for name, node in watched:
                depth[name].append(round(node.depth, 4))
                flooding[name].append(round(node.flooding, 5))
    return {"ok": True, "depth": depth, "flooding": flooding}


def main() -> int:
    die_with_parent()
    # SWMM writes its progress to stdout; the replies need it to themselves.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            reply = run(Path(req["inp"]), list(req.get("report") or ()))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the engine
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
