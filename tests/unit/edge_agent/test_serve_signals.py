"""A stop signal stops ``serve`` whatever the main thread was doing when it landed.

Regression: the SIGTERM handler logged, and logging takes the logger's write lock. A signal that
landed while the main thread was writing a log line (holding that lock) waited for it forever:
the edge gateway of a killed demo lived on, doing nothing. The child below is made to receive
its SIGTERM in the middle of writing a log line, every time, so the old handler hangs every time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import structlog
    from edge_agent._build import serve

    class SignalMidWrite:
        # A log file that sends SIGTERM to its own process while PrintLogger holds its lock.
        armed = False
        def write(self, text):
            if self.armed:
                self.armed = False
                os.kill(os.getpid(), signal.SIGTERM)
                sum(range(1000))  # the handler runs here, inside the write, lock held
            sys.stderr.write(text)
        def flush(self):
            sys.stderr.flush()

    sink = SignalMidWrite()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sink))
    log = structlog.get_logger()

    class Agent:
        def run(self, stop):
            turns = 0
            while not stop.is_set():
                turns += 1
                sink.armed = turns == 3
                log.info("turn", n=turns)
            log.info("stopped", turns=turns)
        def wake(self):
            pass

    serve(Agent())
    print("clean exit", flush=True)
    """
)


def test_sigterm_during_a_log_write_stops_the_agent() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        hung = f"serve did not stop on SIGTERM (a deadlock):\n{err[-2000:]}"
        raise AssertionError(hung) from None
    assert proc.returncode == 0, err
    assert out.strip() == "clean exit", (out, err)
    assert "stopped" in err, err
    assert "turns=3" in err, err
