"""``[edge] sim_start`` and ``sim_speed``: when simulated time starts and how fast it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent import agent_clock, build_agent, load_edge_settings, summary
from telemetry_core.clock import ManualClock
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device
from tests.unit.edge_agent.fakes import FakeTransport, ScriptedDriver

NOW_S = 1_786_291_200.0  # 2026-08-09T16:00:00Z


@pytest.mark.parametrize(
    ("text", "start_s"),
    [
        ("now", NOW_S),
        ("-1h", NOW_S - 3600),
        ("-90m", NOW_S - 5400),
        ("-2.5d", NOW_S - 2.5 * 86_400),
        ("2026-08-09T12:00:00Z", NOW_S - 4 * 3600),
        ("2026-08-09T20:00:00+08:00", NOW_S - 4 * 3600),
    ],
)
def test_sim_start_forms(tmp_path: Path, text: str, start_s: float) -> None:
    settings = load_edge_settings(_write(tmp_path, f'sim_start = "{text}"\n'), environ={})
    assert settings.edge.sim_start_s(NOW_S) == start_s


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("yesterday", "negative offset"),
        ("+1h", "negative offset"),
        ("-1w", "negative offset"),
        ("2026-08-09T12:00:00", "time zone"),
        ("2999-01-01T00:00:00Z", "in the future"),
    ],
)
def test_bad_sim_starts_fail_at_load_and_say_why(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=rf"edge.toml:\d+: edge.sim_start: .*{needle}"):
        load_edge_settings(_write(tmp_path, f'sim_start = "{text}"\n'), environ={})


def test_the_environment_sets_sim_start(tmp_path: Path) -> None:
    env = {"XIUHUA_EDGE__SIM_START": "-6h"}
    settings = load_edge_settings(_write(tmp_path, ""), environ=env)
    assert settings.edge.sim_start_s(NOW_S) == NOW_S - 6 * 3600


def test_simulated_time_starts_at_sim_start_and_runs_at_sim_speed(tmp_path: Path) -> None:
    settings = load_edge_settings(
        _write(tmp_path, 'sim_speed = 600\nsim_start = "-10h"\n'), environ={}
    )
    wall = ManualClock(start_s=NOW_S)
    clock = agent_clock(settings, base=wall)
    assert clock.now_s() == NOW_S - 36_000
    wall.advance(60.0)  # a minute of wall time at 600x: ten simulated hours, ending at "now"
    assert clock.now_s() == NOW_S
    assert clock.monotonic_s() == 36_000


def test_an_explicit_start_wins_and_the_defaults_are_the_wall_clock(tmp_path: Path) -> None:
    wall = ManualClock(start_s=NOW_S)
    plain = load_edge_settings(_write(tmp_path, ""), environ={})
    assert agent_clock(plain, base=wall) is wall
    only_start = load_edge_settings(_write(tmp_path, 'sim_start = "-1h"\n'), environ={})
    assert only_start.edge.simulated_time
    clock = agent_clock(only_start, start_s=NOW_S - 7200, base=wall)
    wall.advance(10.0)
    assert clock.now_s() == NOW_S - 7190  # speed 1, but two hours behind


def test_the_device_entry_does_not_import_pydantic() -> None:
    # The agent's memory goal: pydantic costs ~20 MB; the shared settings rules must not pull it.
    code = (
        "import sys, edge_agent._main, telemetry_core.config_rules; "
        "sys.exit('pydantic' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'[edge]\ndevice_id = "dr-jj-000001"\n{body}', encoding="utf-8")
    return path


def test_the_summary_says_when_simulated_time_starts(tmp_path: Path) -> None:
    settings = load_edge_settings(
        _write(tmp_path, f'sim_speed = 60\nsim_start = "-2h"\nstate_dir = "{tmp_path}"\n'),
        environ={},
    )
    device = Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0)
    driver = ScriptedDriver(device.device_id, lambda _t: 1.0)
    clock = agent_clock(settings, base=ManualClock(start_s=NOW_S))
    agent = build_agent(settings, [device], {device.device_id: driver}, clock, FakeTransport())
    assert "speed x60, simulated time from -2h)" in summary(agent, settings)
    agent.shutdown(timeout_s=0)
