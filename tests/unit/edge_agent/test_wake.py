"""A stop request ends the agent's wait for MQTT events at once, even from a signal handler."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from edge_agent import PahoTransport
from edge_agent._settings import MqttSection


def _transport() -> PahoTransport:
    # Never started: events() only waits on its queue, which is what is under test.
    return PahoTransport(MqttSection(), "dr-jj-000001", lambda: ("t", b""))


def test_wake_ends_a_wait_and_leaves_no_event_behind() -> None:
    transport = _transport()
    waker = threading.Timer(0.05, transport.wake)
    waker.start()
    assert transport.events(60.0) == []
    waker.join()
    assert transport.events(0.0) == []


def test_a_signal_handler_that_wakes_ends_the_wait() -> None:
    # CPython 3.11: a signal interrupting a timed SimpleQueue.get after its deadline can leave
    # it waiting without one; the handler's wake() is what ends it. A 1 ms wait maximises the
    # chance that the signal lands after the deadline, as it did in the field.
    transport = _transport()
    handled = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        handled.set()
        transport.wake()

    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
        killer.start()
        while not handled.is_set():
            transport.events(0.001)
        killer.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert transport.events(0.0) == []
