"""Process lifecycle of the local servers: ports, start-up failures, dying with the parent."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import IO

import pytest

from telemetry_core.errors import ServiceError
from tests.helpers import MosquittoFactory, wait_until
from xiuhua.services import LocalServer, Mosquitto, mqtt_answers

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


def _is_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_start_on_a_taken_fixed_port_reports_the_log(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        broker = Mosquitto(tmp_path, port=blocker.getsockname()[1])
        with pytest.raises(ServiceError, match=r"(?i)address already in use"):
            broker.start()
    assert not broker.is_running


def test_auto_port_moves_when_taken_before_start(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", broker.port))
        blocker.listen()
        taken = broker.port
        with broker:
            assert broker.port != taken
            assert mqtt_answers(broker.host, broker.port)


_PARENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from xiuhua.services import Mosquitto
    broker = Mosquitto(Path(sys.argv[1]))
    broker.start()
    print("CHILD_PID", broker.pid, flush=True)
    sys.stdin.read()
    """
)


def _read_child_pid(stream: IO[bytes]) -> int:
    # The parent's structlog lines share stdout; the pid line is tagged.
    for line in stream:
        if line.startswith(b"CHILD_PID "):
            return int(line.split()[1])
    raise AssertionError("the parent exited without starting its broker")


def test_broker_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as parent:
        assert parent.stdout is not None
        child_pid = _read_child_pid(parent.stdout)
        assert not _is_gone(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=DEADLINE_S)
    wait_until(lambda: _is_gone(child_pid), timeout_s=DEADLINE_S, message="orphan broker")


def test_broker_started_from_a_worker_thread_outlives_the_thread(
    mosquitto_factory: MosquittoFactory,
) -> None:
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; it is armed in the main thread only.
    started: list[Mosquitto] = []
    worker = threading.Thread(target=lambda: started.append(mosquitto_factory()))
    worker.start()
    worker.join(timeout=DEADLINE_S)
    # join() returns before the OS thread is gone; the death signal would come only then.
    task = Path(f"/proc/self/task/{worker.native_id}")
    wait_until(lambda: not task.exists(), timeout_s=DEADLINE_S, message="worker thread exit")
    [broker] = started
    # A few round trips give a death signal, had one been sent, time to land.
    assert all(mqtt_answers(broker.host, broker.port) for _ in range(20))
    assert broker.is_running


class _Scripted(LocalServer):
    """A 'server' that runs a Python snippet, to drive the start-up failure paths."""

    name = "scripted"

    def __init__(self, root: Path, script: str) -> None:
        super().__init__(root, startup_timeout_s=1.0)
        self._script = script

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def _write_config(self) -> None:
        """Nothing to write."""

    def _argv(self) -> list[str]:
        return [sys.executable, "-c", self._script.replace("PORT", str(self.port))]

    def _probe(self) -> bool:
        return False  # never speaks the protocol


def test_a_server_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    listen = (
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', PORT)); s.listen()\n"
        "print('listening', flush=True); time.sleep(600)"
    )
    server = _Scripted(tmp_path, listen)
    with pytest.raises(
        ServiceError, match=r"did not answer on port \d+ within 1 s(.|\n)*listening"
    ):
        server.start()
    assert not server.is_running


def test_a_server_that_exits_at_start_reports_code_and_log(tmp_path: Path) -> None:
    server = _Scripted(tmp_path, "import sys; print('bad config line 3', flush=True); sys.exit(3)")
    with pytest.raises(ServiceError, match=r"exited with code 3 while starting(.|\n)*line 3"):
        server.start()
    assert not server.is_running
