"""Worker threads that cannot die quietly: an uncaught exception ends the whole process.

A consumer (ingester, edge agent, rule engine, dispatcher) is a few threads around queues. If
one of them dies and the process stays up, nothing more is stored or acknowledged, and a
supervisor sees a healthy process: the worst failure there is. So a worker thread that ends
with an exception logs ``thread_died`` naming the thread and the exception, and the process
exits at once with :data:`THREAD_DIED_EXIT_CODE`, for the supervisor to restart it. Exiting at
once is safe for our consumers by design: nothing is acknowledged before it is stored (see
``docs/ingest.md``, "crash safety"), and a SIGKILL at any instant is tested.

Two pieces:

- :class:`GuardedThread`, a ``threading.Thread`` whose ``run`` catches everything (even
  ``SystemExit``, which ``threading.excepthook`` never sees) and calls its death handler;
- :func:`install_excepthook`, which entry points call once, so threads started by libraries
  (paho's, prometheus-client's) are covered too.

A clean stop can hang as well (a lock never released, a peer that never answers), and a
process that was told to stop and lives on is the same silent failure. :func:`stop_deadline`
bounds it: past its deadline every thread's stack goes to stderr and the process exits.

Per-message failures are a different thing: a consumer turns the one message into a
dead-letter record (``internal_error``) and goes on. A thread dies only of what is left.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import structlog

THREAD_DIED_EXIT_CODE: Final = 70
"""``EX_SOFTWARE`` (sysexits.h): an internal error; distinct from 1 (failed) and 2 (settings)."""

STOP_OVERRAN_EXIT_CODE: Final = 75
"""``EX_TEMPFAIL`` (sysexits.h): a clean stop did not finish in time and was cut short."""

STOP_DEADLINE_S: Final = 30.0
"""How long a service's clean stop may take (its own timeouts add up to less); systemd's
default ``TimeoutStopSec`` is 90 s."""

DeathHandler = Callable[[str, BaseException], None]
"""``(thread name, exception)``: what to do when a guarded thread dies."""

log = structlog.get_logger()


def exit_process(thread_name: str, exc: BaseException) -> None:
    """Log ``thread_died`` and end the process with :data:`THREAD_DIED_EXIT_CODE`."""
    log.critical(
        "thread_died",
        thread=thread_name,
        error=type(exc).__name__,
        detail=str(exc)[:500],
        exit_code=THREAD_DIED_EXIT_CODE,
        exc_info=exc,
    )
    _flush_std_streams()
    # os._exit, not sys.exit: sys.exit in a thread only ends that thread, and a normal exit
    # would wait for other non-daemon threads that may be stuck on what just failed.
    os._exit(THREAD_DIED_EXIT_CODE)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken: the exit matters more than the log
            continue


class GuardedThread(threading.Thread):
    """A daemon thread whose uncaught exception goes to ``on_death`` (by default: exit)."""

    def __init__(
        self,
        target: Callable[..., object],
        *,
        name: str,
        args: tuple[Any, ...] = (),
        on_death: DeathHandler | None = None,
        daemon: bool = True,
    ) -> None:
        super().__init__(name=name, daemon=daemon)
        self._guarded_target = target
        self._guarded_args = args
        self._on_death = on_death or exit_process

    def run(self) -> None:
        """Run the target; any exception (``SystemExit`` included) is a death."""
        try:
            self._guarded_target(*self._guarded_args)
        except BaseException as exc:  # noqa: BLE001 - a worker may not die of anything quietly
            self._on_death(self.name, exc)


def guarded_thread(
    target: Callable[..., object],
    *,
    name: str,
    args: tuple[Any, ...] = (),
    on_death: DeathHandler | None = None,
) -> GuardedThread:
    """A started :class:`GuardedThread` (daemon) running ``target(*args)``."""
    thread = GuardedThread(target, name=name, args=args, on_death=on_death)
    thread.start()
    return thread


def install_excepthook(on_death: DeathHandler | None = None) -> None:
    """Make an uncaught exception in *any* thread of this process a death (entry points)."""
    handler = on_death or exit_process

    def _hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "unknown"
        exc = args.exc_value if args.exc_value is not None else RuntimeError(str(args.exc_type))
        handler(name, exc)

    threading.excepthook = _hook


@contextmanager
def stop_deadline(what: str, seconds: float = STOP_DEADLINE_S) -> Iterator[None]:
    """Run a clean stop that may take at most ``seconds``; past that, end the process.

    A watcher thread waits for the block to end. If it does not end in time, the watcher writes
    ``stop_overran`` and every thread's stack to stderr and exits with
    :data:`STOP_OVERRAN_EXIT_CODE`. It writes to the file descriptor itself, taking no lock:
    the stuck thread may hold the logger's.
    """
    done = threading.Event()

    def _watch() -> None:
        if done.wait(seconds):
            return
        note = f"stop_overran what={what} deadline_s={seconds:g}: every thread's stack follows\n"
        try:
            os.write(2, note.encode())
            faulthandler.dump_traceback(file=2, all_threads=True)
        except OSError:  # stderr gone: the exit matters more than the note
            pass
        os._exit(STOP_OVERRAN_EXIT_CODE)

    watcher = threading.Thread(target=_watch, name=f"stop-deadline-{what}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
