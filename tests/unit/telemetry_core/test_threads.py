"""Guarded threads: a worker that dies ends the process with exit code 70 and a log naming it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from telemetry_core.threads import (
    STOP_OVERRAN_EXIT_CODE,
    THREAD_DIED_EXIT_CODE,
    GuardedThread,
    guarded_thread,
    install_excepthook,
)


class Deaths:
    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException]] = []

    def __call__(self, name: str, exc: BaseException) -> None:
        self.seen.append((name, exc))


def boom() -> None:
    raise RuntimeError("worker failed")


def test_an_exception_in_a_guarded_thread_goes_to_its_death_handler() -> None:
    deaths = Deaths()
    thread = guarded_thread(boom, name="worker-1", on_death=deaths)
    thread.join(10)
    assert [(name, type(exc), str(exc)) for name, exc in deaths.seen] == [
        ("worker-1", RuntimeError, "worker failed")
    ]


def test_system_exit_in_a_guarded_thread_is_a_death_too() -> None:
    # threading.excepthook never sees SystemExit: a thread calling sys.exit would end quietly.
    deaths = Deaths()
    thread = GuardedThread(lambda: sys.exit(3), name="quitter", on_death=deaths)
    thread.start()
    thread.join(10)
    assert [(name, type(exc)) for name, exc in deaths.seen] == [("quitter", SystemExit)]


def test_a_thread_that_returns_is_no_death() -> None:
    deaths = Deaths()
    result: list[int] = []
    guarded_thread(result.append, name="fine", args=(7,), on_death=deaths).join(10)
    assert (result, deaths.seen) == ([7], [])


def test_the_excepthook_covers_plain_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    deaths = Deaths()
    install_excepthook(deaths)
    thread = threading.Thread(target=boom, name="library-thread")
    thread.start()
    thread.join(10)
    assert [name for name, _ in deaths.seen] == ["library-thread"]


@pytest.mark.parametrize("how", ["guarded", "hook"])
def test_a_dead_worker_ends_the_process_with_code_70_and_a_log_line(how: str) -> None:
    code = textwrap.dedent(
        f"""
        import threading, time
        from telemetry_core.logging import configure_logging
        from telemetry_core.threads import guarded_thread, install_excepthook
        configure_logging(json=True)
        def boom():
            raise ValueError("poisoned")
        if {how!r} == "guarded":
            guarded_thread(boom, name="ingest-writer")
        else:
            install_excepthook()
            threading.Thread(target=boom, name="ingest-writer").start()
        time.sleep(60)  # the main thread would live on: the death must end the process
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == THREAD_DIED_EXIT_CODE, proc.stderr
    assert '"event": "thread_died"' in proc.stderr
    assert '"thread": "ingest-writer"' in proc.stderr
    assert '"error": "ValueError"' in proc.stderr


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_stop_that_hangs_past_its_deadline_ends_the_process_with_the_stacks() -> None:
    # The stuck thread holds a lock the watcher would need if it logged: it must not.
    done = _run_child(
        """
        import threading
        from telemetry_core.threads import stop_deadline
        def stuck_in_shutdown():
            threading.Event().wait()
        with stop_deadline("demo-service", seconds=0.2):
            stuck_in_shutdown()
        print("never")
        """
    )
    assert done.returncode == STOP_OVERRAN_EXIT_CODE, done.stderr
    assert "never" not in done.stdout
    assert "stop_overran what=demo-service deadline_s=0.2" in done.stderr
    assert "stuck_in_shutdown" in done.stderr  # the main thread's stack names where it hung


def test_a_stop_within_its_deadline_goes_on_and_leaves_no_watcher() -> None:
    done = _run_child(
        """
        import threading, time
        from telemetry_core.threads import stop_deadline
        with stop_deadline("quick", seconds=0.2):
            pass
        deadline = time.monotonic() + 60  # a released watcher returns; a fired one exits 75
        while threading.active_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        print("threads", threading.active_count())
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "threads 1"
