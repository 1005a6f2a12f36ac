"""The device entry's pieces: devices from settings, driver factories, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import AgentConfigError, configured_devices, load_driver_factory, load_edge_settings
from edge_agent._main import main
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv


def _settings(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'[edge]\nstate_dir = "{tmp_path / "state"}"\n{body}', encoding="utf-8")
    return path


def test_devices_come_from_the_edge_section_or_the_fleet_file(tmp_path: Path) -> None:
    own = _settings(
        tmp_path, 'device_id = "dr-jj-000005"\ndistrict = "jiaojiang"\nkind = "drain"\n'
    )
    (device,) = configured_devices(load_edge_settings(own, environ={})) or []
    assert (device.device_id, device.kind, device.district) == (
        "dr-jj-000005",
        DeviceKind.DRAIN,
        "jiaojiang",
    )
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(
        [
            Device(f"dr-jj-00000{n}", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0)
            for n in (1, 2)
        ],
        fleet,
    )
    gateway = _settings(tmp_path, f'gateway_id = "gw-jj-01"\n[registry]\npath = "{fleet}"\n')
    assert len(configured_devices(load_edge_settings(gateway, environ={})) or []) == 2
    incomplete = _settings(tmp_path, 'device_id = "dr-jj-000005"\n')
    assert configured_devices(load_edge_settings(incomplete, environ={})) is None


def test_a_device_missing_from_the_fleet_file_is_an_error(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(
        [Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0)], fleet
    )
    path = _settings(tmp_path, f'device_id = "dr-jj-000009"\n[registry]\npath = "{fleet}"\n')
    with pytest.raises(AgentConfigError, match="not in"):
        configured_devices(load_edge_settings(path, environ={}))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("no_such_module_xh:factory", "cannot load"),
        ("tests.unit.edge_agent.fakes:no_such_name", "cannot load"),
        ("tests.unit.edge_agent.test_main:NOT_CALLABLE", "not callable"),
        ("nocolon", "package.module:factory"),
    ],
)
def test_bad_driver_factories_are_config_errors(spec: str, needle: str) -> None:
    with pytest.raises(AgentConfigError, match=needle):
        load_driver_factory(spec)


NOT_CALLABLE = 42


def test_a_real_factory_loads() -> None:
    assert load_driver_factory("tests.unit.edge_agent.fakes:ScriptedDriver").__name__ == (
        "ScriptedDriver"
    )


@pytest.mark.parametrize(
    "body",
    [
        'device_id = "dr-jj-000005"\n',  # driver "sim" is xiuhua edge's business
        'device_id = "dr-jj-000005"\ndriver = "no_such_module_xh:f"\n',
        'device_id = "dr-jj-000005"\ndriver = "tests.unit.edge_agent.fakes:ScriptedDriver"\n',
        "median_window = 2\n",
    ],
)
def test_the_device_entry_exits_2_on_bad_settings(
    tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_settings(tmp_path, body))]) == 2
    assert capsys.readouterr().err.startswith("edge_agent: ")
