"""Coverage-guided fuzz target (atheris): the edge agent's command handler.

Input: the first byte picks the shape, raw payload bytes or a ``set_config`` command whose
``config`` is the rest decoded as JSON (so the fuzzer reaches the config merge and validation
quickly). A finding is an exception escaping ``handle_command``, an ``internal_error``
refusal, or a command answered with neither an ack nor a ``command_rejected`` event.

Run: ``python -m tests.fuzz.fuzz_edge_commands [libFuzzer flags] CORPUS_DIR...``.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import atheris
import structlog

with atheris.instrument_imports(include=["telemetry_core", "edge_agent"]):
    from edge_agent import AgentConfig, ConfigStore, DeviceRuntime
    from edge_agent._config import VersionedConfig
    from telemetry_core.clock import ManualClock
    from telemetry_core.kinds import DeviceKind
    from telemetry_core.schema import CommandAck, Event
    from telemetry_core.topics import Channel, Topic

DEVICE = "dr-fz-000001"


class MemoryStore(ConfigStore):
    """The config store without the disk (fsync per applied command would slow the fuzzer)."""

    def __init__(self) -> None:
        super().__init__(
            Path(tempfile.gettempdir()) / "unused.json", DeviceKind.DRAIN, AgentConfig()
        )
        self._saved: VersionedConfig | None = None

    def load(self) -> VersionedConfig:
        """The last saved config, or the defaults."""
        return self._saved or VersionedConfig(AgentConfig(), 0)

    def save(self, versioned: VersionedConfig) -> None:
        """Keep it in memory."""
        self._saved = versioned


class FlatDriver:
    """A drain node reading a constant level."""

    device_id = DEVICE
    kind = DeviceKind.DRAIN

    def read(self, at_s: float) -> Mapping[str, float]:
        """Always the same."""
        return {"level_m": 1.0 + 0 * at_s}


RUNTIME = DeviceRuntime(
    Topic("jiaojiang", DeviceKind.DRAIN, DEVICE, Channel.TELEMETRY),
    FlatDriver(),
    MemoryStore(),
    ManualClock(1_764_000_000.0),
    "fw-fuzz",
)


def one_input(data: bytes) -> None:
    """One fuzz input: the handler answers with a reasoned ack or event, never raises."""
    if not data:
        return
    if data[0] % 2:
        payload = data[1:]
    else:
        config = data[1:].decode("utf-8", errors="replace")
        payload = (
            b'{"v":1,"cmd_id":"c-1","ts":1764000000000,"op":"set_config","config":'
            + config.encode()
            + b"}"
        )
    outcome = RUNTIME.handle_command(payload)
    (out,) = outcome.outgoing
    message = out.message
    if isinstance(message, CommandAck):
        text = message.reason
        assert message.ok or text, "a refusal without a reason"
    else:
        assert isinstance(message, Event), type(message)
        assert message.type == "command_rejected", message.type
        text = message.message
    assert not text.startswith("internal_error"), text


def main() -> None:
    """libFuzzer's entry (logs below critical are dropped: a refusal logs, and that is noise)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
