"""Stop signals as an exception, so that a command that started children stops them first.

Python's default for SIGTERM is to die at once, which leaves every child process running (under
init, retrying forever) and every temporary folder behind. Inside :func:`interrupt_on_signals`
SIGTERM and SIGINT raise :class:`Interrupted` instead, and the ``with`` and ``finally`` blocks on
the way out stop the children and remove the folders. Light on purpose: ``xiuhua edge`` imports
it on small devices.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupted", "interrupt_on_signals"]


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: unwind, stopping children on the way out.

    A ``KeyboardInterrupt`` so that code already written for Ctrl-C cleans up the same way.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Inside, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread.

    Only the first signal raises; later ones are ignored, so the cleanup it starts (stopping
    children, removing folders) runs to its end. Python's default for SIGTERM is to die at
    once, which would leave every child running. Previous handlers come back on exit.
    """
    raised = False

    def _raise(signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
