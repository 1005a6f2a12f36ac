"""Settings: one TOML file, every key overridable by ``XIUHUA_<SECTION>__<KEY>`` variables.

Each component composes its own settings model from these sections by subclassing
:class:`XiuhuaSettings` and adding a section of its own, and builds it with
:func:`load_settings`. Precedence, highest first: environment, TOML file, defaults. Secrets are
``SecretStr`` and never printed; placeholder secrets are refused.

The rules themselves (layering, placeholders, MQTT URLs) live in
:mod:`telemetry_core.config_rules`, which the edge agent's pydantic-free settings share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from telemetry_core.config_rules import (
    MqttUrlMixin,
    is_placeholder,
    mqtt_endpoint,
    read_layers,
    read_toml,
)
from telemetry_core.errors import ConfigError

__all__ = [
    "InfluxSettings",
    "LogSettings",
    "MqttSettings",
    "RegistrySettings",
    "Section",
    "XiuhuaSettings",
    "load_settings",
    "read_toml",
]


def _refuse_placeholder(value: SecretStr | None) -> SecretStr | None:
    if value is not None and is_placeholder(value.get_secret_value()):
        raise ValueError("is a placeholder; set a real secret")
    return value


class Section(BaseModel):
    """A settings section: unknown keys are errors, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(Section, MqttUrlMixin):
    """How to reach the MQTT broker."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    tls: bool = False
    ca_file: Path | None = None

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: SecretStr | None) -> SecretStr | None:
        return _refuse_placeholder(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        mqtt_endpoint(value)
        return value


class InfluxSettings(Section):
    """How to reach InfluxDB: ``v1`` is ``/write`` with a database, ``v2`` is influxdb-client."""

    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: str = "xiuhua"
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    timeout_s: float = 10.0

    @field_validator("password", "token")
    @classmethod
    def _check_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        return _refuse_placeholder(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r}: want http(s)://host:port")
        return value.rstrip("/")


class RegistrySettings(Section):
    """Where the fleet file is."""

    path: Path | None = None


class LogSettings(Section):
    """How to log: level, and JSON lines for machines or console output for people."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_lines: bool = False


class XiuhuaSettings(BaseModel):
    """The sections every entry point shares; components subclass it and add their own.

    Build it with :func:`load_settings`, which layers the file and the environment.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    registry: RegistrySettings = RegistrySettings()
    log: LogSettings = LogSettings()


S = TypeVar("S", bound=XiuhuaSettings)


def load_settings(
    cls: type[S], config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> S:
    """Settings of type ``cls`` from ``config_path`` (optional) and the environment.

    ``environ`` defaults to ``os.environ``; only variables of ``cls``'s sections are read.
    ``ConfigError`` naming the file (or the environment) and every problem found.
    """
    env = os.environ if environ is None else environ
    data = read_layers(config_path, env, sections=cls.model_fields)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        source = str(config_path) if config_path else "environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
