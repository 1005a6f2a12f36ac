"""The shared settings rules: placeholders, MQTT endpoints, file and environment layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from telemetry_core.config_rules import (
    PLACEHOLDER_SECRETS,
    MqttEndpoint,
    is_placeholder,
    mqtt_endpoint,
    parse_sim_start,
    read_layers,
)
from telemetry_core.errors import ConfigError
from telemetry_core.settings import MqttSettings


@pytest.mark.parametrize("secret", ["changeme", " ChangeMe ", "TODO", "password", "xxx"])
def test_placeholders_are_recognised_in_any_case(secret: str) -> None:
    assert is_placeholder(secret)


@pytest.mark.parametrize("secret", ["s3cr3t-Pa55", "changeme2", ""])
def test_real_secrets_are_not_placeholders(secret: str) -> None:
    assert not is_placeholder(secret)
    assert "changeme" in PLACEHOLDER_SECRETS


@pytest.mark.parametrize(
    ("url", "tls", "endpoint"),
    [
        ("mqtt://127.0.0.1", False, MqttEndpoint("127.0.0.1", 1883, False)),
        ("mqtt://broker.local:1884", False, MqttEndpoint("broker.local", 1884, False)),
        ("mqtts://broker.local", False, MqttEndpoint("broker.local", 8883, True)),
        ("mqtt://broker.local:8884", True, MqttEndpoint("broker.local", 8884, True)),
    ],
)
def test_mqtt_endpoints(url: str, tls: bool, endpoint: MqttEndpoint) -> None:
    assert mqtt_endpoint(url, tls) == endpoint


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://x", "want mqtt://host:port"),
        ("mqtt://", "want mqtt://host:port"),
        ("broker:1883", "want mqtt://host:port"),
        ("mqtt://broker:99999", "port is not a number"),
        ("mqtt://broker:abc", "port is not a number"),
    ],
)
def test_bad_mqtt_urls_name_the_url(url: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        mqtt_endpoint(url)
    assert repr(url) in str(info.value)


def test_the_pydantic_settings_use_the_same_endpoint_rule() -> None:
    settings = MqttSettings(url="mqtt://broker.local", tls=True)
    assert (settings.host, settings.port, settings.use_tls) == ("broker.local", 1883, True)
    with pytest.raises(ValueError, match="port is not a number"):
        MqttSettings(url="mqtt://broker:99999")


def test_layers_file_then_environment_deep_merged(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        '[mqtt]\nurl = "mqtt://a"\nusername = "u"\n[edge.defaults]\ninterval_s = 60\n',
        encoding="utf-8",
    )
    environ = {
        "XIUHUA_MQTT__URL": "mqtt://b",
        "xiuhua_edge__defaults__deadbands": '{"level_m": 0.02}',
        "XIUHUA_EDGE__TAGS": '["a", "b"]',
        "XIUHUA_INGEST__GROUP": "g",
        "XIUHUA_NOSECTION": "ignored: no key",
        "XIUHUA_MQTT__": "ignored: empty key",
        "HOME": "/root",
    }
    assert read_layers(path, environ, sections=["mqtt", "edge"]) == {
        "mqtt": {"url": "mqtt://b", "username": "u"},
        "edge": {
            "defaults": {"interval_s": 60, "deadbands": {"level_m": 0.02}},
            "tags": ["a", "b"],
        },
    }
    assert read_layers(None, environ)["ingest"] == {"group": "g"}


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"XIUHUA_EDGE__DEFAULTS": '{"a": '}, "XIUHUA_EDGE__DEFAULTS: not valid JSON"),
        ({"XIUHUA_MQTT": "x", "XIUHUA_MQTT__URL__X": "y"}, "mqtt.url is not a table"),
    ],
)
def test_bad_environment_values_name_the_variable(
    tmp_path: Path, environ: dict[str, str], needle: str
) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[mqtt]\nurl = "mqtt://a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        read_layers(path, environ)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[mqtt\n", "not valid TOML"), (None, "no such settings file")],
)
def test_unreadable_files_name_the_file(tmp_path: Path, text: str | None, needle: str) -> None:
    path = tmp_path / "x.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        read_layers(path, {})


def test_sim_start_is_relative_to_the_given_now() -> None:
    assert parse_sim_start(" -30s ", 1000.0) == 970.0
    assert parse_sim_start("1970-01-01T00:10:00Z", 1000.0) == 600.0
    with pytest.raises(ValueError, match="in the future"):
        parse_sim_start("1970-01-01T00:20:00Z", 1000.0)


def test_the_rules_do_not_import_pydantic() -> None:
    code = "import sys, telemetry_core.config_rules; sys.exit('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
