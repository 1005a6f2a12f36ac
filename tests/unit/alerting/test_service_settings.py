"""Settings of ``xiuhua alerting``: the file, environment overrides, refusals naming the place."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerting._service_build import partition_devices, subscriptions_of
from alerting._settings import AlertingSection, AlertingSettings
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from telemetry_core.settings import load_settings
from xiuhua.commands.alerting import app


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text('[alerting]\ninstance = "north"\ncheckpoint_interval_s = 0.5\n')
    env = {"XIUHUA_ALERTING__DISTRICTS": '["luqiao", "wenling"]',
           "XIUHUA_ALERTING__CHECKPOINT_INTERVAL_S": "0.2"}  # fmt: skip
    settings = load_settings(AlertingSettings, config, env)
    assert settings.alerting.instance == "north"
    assert settings.alerting.districts == ("luqiao", "wenling")
    assert settings.alerting.checkpoint_interval_s == 0.2


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('districts = ["Luqiao"]', "alerting.districts"),
        ('districts = ["luqiao", "luqiao"]', "alerting.districts"),
        ("checkpoint_interval_s = 0", "alerting.checkpoint_interval_s"),
        ("surprise = 1", "alerting.surprise"),
    ],
)
def test_a_bad_setting_is_refused_naming_file_and_field(
    tmp_path: Path, text: str, where: str
) -> None:
    config = tmp_path / "a.toml"
    config.write_text(f"[alerting]\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(AlertingSettings, config, {})
    assert str(config) in str(err.value)
    assert where in str(err.value)


def test_the_command_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    # Refused while the settings load, before the command configures logging for the process
    # (which would outlive this test).
    config = tmp_path / "a.toml"
    config.write_text('[alerting]\ndistricts = ["Jiao Jiang"]\n')
    result = CliRunner().invoke(app, ["--config", str(config)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "alerting.districts" in result.output


def test_a_partition_subscribes_to_its_districts_and_every_rain_gauge() -> None:
    subs = [s.topic_filter for s in subscriptions_of(AlertingSection(districts=("luqiao",)))]
    assert subs == ["xh/v1/luqiao/+/+/telemetry", "xh/v1/luqiao/+/+/event",
                    "xh/v1/luqiao/+/+/status", "xh/v1/+/rain/+/telemetry"]  # fmt: skip
    assert [s.topic_filter for s in subscriptions_of(AlertingSection())] == [
        "xh/v1/+/+/+/telemetry", "xh/v1/+/+/+/event", "xh/v1/+/+/+/status",
    ]  # fmt: skip


def test_an_instance_evaluates_only_its_districts_devices() -> None:
    registry = Registry(
        [Device("dr-lq-000001", DeviceKind.DRAIN, "luqiao", 28.5, 121.3, 60.0, {}),
         Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {})]
    )  # fmt: skip
    assert [d.device_id for d in partition_devices(registry, ("luqiao",))] == ["dr-lq-000001"]
    with pytest.raises(ConfigError, match="wenling"):
        partition_devices(registry, ("wenling",))
