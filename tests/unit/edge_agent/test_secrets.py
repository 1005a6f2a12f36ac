"""Secrets never reach a log event, an error message, a repr or the start-up summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_agent import build_agent, load_edge_settings, summary
from telemetry_core.clock import ManualClock
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device
from tests.unit.edge_agent.fakes import FakeTransport, ScriptedDriver

SECRET = "Hx4-unit-secret-9071"  # noqa: S105 - the secret the test hunts for
DEVICE = "dr-jj-000001"


def _settings_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(
        f'[mqtt]\nusername = "{DEVICE}"\npassword = "{SECRET}"\n'
        f'[edge]\ndevice_id = "{DEVICE}"\nstate_dir = "{tmp_path / "state"}"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_a_whole_agent_run_logs_no_secret(tmp_path: Path) -> None:
    settings = load_edge_settings(_settings_file(tmp_path), environ={})
    device = Device(DEVICE, DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 1.0)
    clock = ManualClock(start_s=1_764_000_000.0)
    transport = FakeTransport()
    with capture_logs() as logs:
        driver = ScriptedDriver(DEVICE, lambda t: None if int(t) % 7 == 0 else 1.0)
        agent = build_agent(settings, [device], {DEVICE: driver}, clock, transport)
        agent.start()
        for second in range(30):
            if second in (3, 20):
                transport.connect()
            if second == 6:
                transport.ack_all(ok=False)  # refusals are logged with their reason
            if second == 12:
                transport.disconnect()
            agent.step(transport.events(0))
            clock.advance(1.0)
        text = summary(agent, settings)
        agent.shutdown(timeout_s=0)
    assert len(logs) > 5
    assert SECRET not in repr(logs)
    assert SECRET not in text
    assert f"as {DEVICE}" in text
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    "extra",
    [
        "bogus = 1\n",
        "replay_rate_per_s = -1\n",
        "[edge.defaults]\nmedian_window = 4\n",
    ],
)
def test_settings_errors_do_not_quote_the_secret(tmp_path: Path, extra: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_edge_settings(_settings_file(tmp_path, extra), environ={})
    assert SECRET not in str(info.value)
