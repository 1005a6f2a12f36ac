"""Child-process plumbing shared by every local server: spawn, probe, stop, die with the parent."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import structlog

from telemetry_core.errors import ServiceError

log = structlog.get_logger()

LOCALHOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1

# Resolved once in the parent: a child between fork and exec must not dlopen (it may deadlock
# if another thread of the parent held the loader lock at fork time).
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux/glibc; the atexit hook still covers clean exits
    _LIBC = None


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (the kernel picks it).

    Another process may grab it before our server binds; servers retry with a new port then.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent(parent_pid: int, *, arm: bool = True) -> None:
    """``preexec_fn`` for children: get SIGTERM when the parent dies (Linux prctl).

    If the parent already died between fork and prctl, the death signal will never come, so
    the child terminates itself at once.
    """
    if arm and _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def spawn(
    argv: list[str], log_path: Path, cwd: Path, *, user: str | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_path``, tied to our lifetime.

    The child gets its own session so a Ctrl-C in the terminal reaches only us, and we stop
    the children in order instead of having them all die at once. ``user`` runs it as another
    user (PostgreSQL refuses root); the death signal is armed after the switch, which clears it.
    """
    parent_pid = os.getpid()
    # The kernel sends the death signal when the *thread* that forked exits, so a server started
    # from a short-lived worker thread would be killed with it. Arm it only from the main thread;
    # elsewhere the atexit hook (and stop()) remain.
    arm = threading.current_thread() is threading.main_thread()
    with log_path.open("ab") as log_file:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=_group_of(user),
                preexec_fn=lambda: die_with_parent(parent_pid, arm=arm),  # noqa: PLW1509 - fork-safe: only prctl/getppid/kill
            )
        except OSError as exc:
            hint = (
                " (install it with scripts/bootstrap.sh)"
                if isinstance(exc, FileNotFoundError)
                else ""
            )
            raise ServiceError(f"cannot start {argv[0]}: {exc}{hint}") from exc


def _group_of(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("service_stop_timeout", pid=proc.pid, timeout_s=timeout_s)
    return kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL and reap. Returns the exit code."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait()


def tail(path: Path, lines: int = 30, *, since: int = 0) -> str:
    """The last ``lines`` lines of a log file after byte ``since``, or a note that there is none."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(since, fh.tell() - 16_384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def owns_listening_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (any IPv4 address).

    A readiness probe alone could be answered by another server that won a race for the same
    port; checking socket ownership in /proc proves the answer came from our child.
    """
    inodes = _listen_inodes(port)
    if not inodes:
        return False
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _listen_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state (0A) on ``port`` from /proc/net/tcp."""
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    wanted = f":{port:04X}"
    inodes: set[str] = set()
    for row in rows:
        cols = row.split()
        if len(cols) > 9 and cols[1].endswith(wanted) and cols[3] == "0A":
            inodes.add(cols[9])
    return inodes


class _LiveSet:
    """Processes still running, stopped at interpreter exit as a last resort."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def stop_all(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for proc in procs:
            terminate(proc, timeout_s=5.0)


LIVE = _LiveSet()
atexit.register(LIVE.stop_all)
