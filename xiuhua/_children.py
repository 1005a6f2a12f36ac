"""What the demo (and any command like it) needs to run ``xiuhua`` subcommands as children.

A child runs in its own session and dies with its parent (:func:`xiuhua.services.spawn`); a
run's temporary folder carries its owner's pid, so a folder left by a demo killed with SIGKILL
(no time to clean up) is removed by the next run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from xiuhua.services import spawn, terminate

__all__ = ["OWNER_FILE", "ChildProcess", "remove_stale_folders"]


class ChildProcess:
    """A ``xiuhua`` subcommand run as a child process, its output kept in a log file.

    Started like the local servers (:func:`xiuhua.services.spawn`): in a session of its own, so
    a Ctrl-C reaches only the demo, which stops the children in order; and tied to the demo's
    life, so a demo killed outright takes them with it (SIGTERM on the parent's death).
    """

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._proc = spawn(argv, log_path, cwd=log_path.parent)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL if it will not go; the exit code."""
        return terminate(self._proc, timeout_s)

    def tail(self, lines: int = 20) -> str:
        """The last lines of its output."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


OWNER_FILE = ".owner-pid"
"""In a run's folder while the demo that made it runs (and will remove it)."""


def remove_stale_folders(temp_dir: Path) -> list[Path]:
    """Remove the folders of demos that were killed (SIGKILL leaves no time to clean up)."""
    removed = []
    for folder in sorted(temp_dir.glob("xiuhua-demo-*")):
        try:
            pid = int((folder / OWNER_FILE).read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue  # kept with --keep, or not ours
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
