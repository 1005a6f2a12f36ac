"""The lifecycle every local server shares: ports, directories, start, probe, stop, restart."""

from __future__ import annotations

import abc
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import structlog

from telemetry_core.errors import ServiceError
from xiuhua.services import _process
from xiuhua.services._process import LOCALHOST

log = structlog.get_logger()

_PORT_CLASH = "address already in use"
_START_ATTEMPTS_AUTO_PORT = 4

_Stopper = Callable[[subprocess.Popen[bytes]], int]


class _PortClashError(ServiceError):
    """Another process bound our port between picking it and our server binding it."""


class LocalServer(abc.ABC):
    """A server binary run as our child on 127.0.0.1, with its config and data in ``root_dir``.

    ``port=0`` picks a free port when the object is built (so ``url`` is known before
    ``start()``) and picks again if another process wins the race for it at start-up.
    ``restart()`` always reuses the port and the data directory.
    """

    name: ClassVar[str]

    def __init__(
        self,
        root_dir: Path | None = None,
        *,
        port: int = 0,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 20.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ServiceError(f"{self.name}: port {port} is not a TCP port")
        self._owns_root = root_dir is None
        self._root = (
            Path(tempfile.mkdtemp(prefix=f"xiuhua-{self.name}-")) if root_dir is None else root_dir
        )
        self._auto_port = port == 0
        self._port = port or _process.free_port()
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._log_offset = 0

    # -- what a concrete server provides -------------------------------------------------

    @abc.abstractmethod
    def _write_config(self) -> None:
        """Write config files into ``root_dir`` for the current ports."""

    @abc.abstractmethod
    def _argv(self) -> list[str]:
        """The command line that starts the server in the foreground."""

    @abc.abstractmethod
    def _probe(self) -> bool:
        """True once the server answers its protocol on ``port``; never raises."""

    def _pick_new_ports(self) -> None:
        """Choose fresh ports after a clash; servers with extra ports extend this."""
        self._port = _process.free_port()

    def _run_as(self) -> str | None:
        """The user to run the server as; ``None``: as we are (the default)."""
        return None

    def _on_stopped(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release per-run resources (for example HTTP clients); called after every stop."""

    # -- public surface -------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where clients connect, for example ``mqtt://127.0.0.1:41234``."""

    @property
    def host(self) -> str:
        """The address the server binds (always the loopback)."""
        return LOCALHOST

    @property
    def port(self) -> int:
        """The main TCP port."""
        return self._port

    @property
    def root_dir(self) -> Path:
        """Directory holding config files, the data directory and the log."""
        return self._root

    @property
    def data_dir(self) -> Path:
        """Where the server keeps its data; survives ``restart()``."""
        return self._root / "data"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr, appended across restarts."""
        return self._root / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the child process is alive (it may still be starting)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers; raise ServiceError with its log tail."""
        if self.is_running:
            raise ServiceError(f"{self.name} is already running on port {self._port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only the first start may move ports: a restart must keep clients' URLs valid.
        retry = self._auto_port and not self._started_once
        attempts = _START_ATTEMPTS_AUTO_PORT if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
            except _PortClashError:
                if attempt == attempts:
                    raise
                log.info("service_port_clash", service=self.name, port=self._port)
                self._pick_new_ports()
            else:
                self._started_once = True
                return

    def stop(self) -> None:
        """Stop cleanly: SIGTERM, wait, then SIGKILL. A no-op when not running."""
        self._finish(lambda proc: _process.terminate(proc, self._stop_timeout_s), "service_stopped")

    def kill(self) -> None:
        """SIGKILL, as a crash would: state not yet saved to disk is lost."""
        self._finish(_process.kill, "service_killed")

    def restart(self) -> None:
        """Stop cleanly (if running) and start again on the same port with the same data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, release clients, and delete ``root_dir`` if this object created it."""
        self.stop()
        self._on_stopped()  # also when never started: a client may have been used anyway
        if self._owns_root:
            shutil.rmtree(self._root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, for error messages."""
        return _process.tail(self.log_path, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {self.url} {state} root={self._root}>"

    # -- internals ------------------------------------------------------------------------

    def _start_once(self) -> None:
        self._write_config()
        # The log is appended across starts; errors quote only what this start wrote.
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        began = time.monotonic()
        proc = _process.spawn(self._argv(), self.log_path, cwd=self._root, user=self._run_as())
        _process.LIVE.add(proc)
        self._proc = proc
        try:
            self._wait_ready(proc, began + self._startup_timeout_s)
        except BaseException:  # also Ctrl-C while waiting: never leave a half-started child
            self._finish(_process.kill, "service_start_failed")
            raise
        log.info(
            "service_started",
            service=self.name,
            url=self.url,
            pid=proc.pid,
            startup_s=round(time.monotonic() - began, 3),
        )

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        while True:
            code = proc.poll()
            if code is not None:
                raise self._died_error(code)
            if _process.owns_listening_port(proc.pid, self._port) and self._probe():
                return
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{self.name} did not answer on port {self._port} within "
                    f"{self._startup_timeout_s:g} s; log {self.log_path}:\n"
                    f"{_process.tail(self.log_path, since=self._log_offset)}"
                )
            time.sleep(0.05)

    def _died_error(self, code: int) -> ServiceError:
        tail = _process.tail(self.log_path, since=self._log_offset)
        message = (
            f"{self.name} exited with code {code} while starting; log {self.log_path}:\n{tail}"
        )
        if _PORT_CLASH in tail.lower():
            return _PortClashError(message)
        return ServiceError(message)

    def _finish(self, how: _Stopper, event: str) -> None:
        proc = self._proc
        if proc is None:
            return
        code = how(proc)
        _process.LIVE.discard(proc)
        self._proc = None
        self._on_stopped()
        log.info(event, service=self.name, pid=proc.pid, exit_code=code)
