"""Settings: TOML file, environment overrides, loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry_core.errors import ConfigError
from telemetry_core.settings import XiuhuaSettings, load_settings


def test_defaults() -> None:
    settings = load_settings(XiuhuaSettings)
    assert settings.mqtt.host == "127.0.0.1"
    assert settings.mqtt.port == 1883
    assert settings.influx.api == "v1"


def test_toml_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "xiuhua.toml"
    config.write_text(
        '[mqtt]\nurl = "mqtt://broker.local:1884"\nusername = "ingest"\n'
        '[influx]\napi = "v2"\nbucket = "city"\ntoken = "s3cr3t-token"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("XIUHUA_MQTT__URL", "mqtts://other:8884")
    settings = load_settings(XiuhuaSettings, config)
    assert settings.mqtt.host == "other"
    assert settings.mqtt.port == 8884
    assert settings.mqtt.use_tls
    assert settings.mqtt.username == "ingest"
    assert settings.influx.bucket == "city"
    assert settings.influx.token is not None
    assert "s3cr3t" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[mqtt]\nurl = "http://x"\n', "mqtt.url"),
        ('[mqtt]\nurll = "mqtt://x"\n', "mqtt.urll"),
        ('[influx]\napi = "v9"\n', "influx.api"),
        ('[influx]\npassword = "changeme"\n', "placeholder"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_bad_files_fail_loudly(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(XiuhuaSettings, config)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(XiuhuaSettings, tmp_path / "nope.toml")


def test_environment_for_other_sections_is_ignored_and_a_typo_fails() -> None:
    env = {"XIUHUA_EDGE__DEVICE_ID": "not ours", "XIUHUA_LOG__LEVEL": "debug"}
    assert load_settings(XiuhuaSettings, environ=env).log.level == "debug"
    with pytest.raises(ConfigError, match=r"mqtt\.urll"):
        load_settings(XiuhuaSettings, environ={"XIUHUA_MQTT__URLL": "mqtt://x"})
