"""Settings: one TOML file, every key overridable by ``XIUHUA_<SECTION>__<KEY>`` variables.

Each component composes its own settings model from these sections by subclassing
:class:`XiuhuaSettings` and adding a section of its own. Precedence, highest first: environment,
TOML file, defaults. Secrets are ``SecretStr`` and never printed; placeholder secrets are refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from telemetry_core.errors import ConfigError

_PLACEHOLDERS = frozenset({"changeme", "change-me", "password", "secret", "xxx", "todo"})


def _refuse_placeholder(value: SecretStr | None) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
        raise ValueError("is a placeholder; set a real secret")
    return value


class Section(BaseModel):
    """A settings section: unknown keys are errors, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(Section):
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
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{value!r}: want mqtt://host:port or mqtts://host:port")
        return value

    @property
    def host(self) -> str:
        """The broker's host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts, when not given)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def use_tls(self) -> bool:
        """Whether to speak TLS: ``tls = true`` or an ``mqtts://`` URL."""
        return self.tls or urlsplit(self.url).scheme == "mqtts"


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


class XiuhuaSettings(BaseSettings):
    """The sections every entry point shares; components subclass it and add their own."""

    model_config = SettingsConfigDict(
        env_prefix="XIUHUA_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    registry: RegistrySettings = RegistrySettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - signature fixed by pydantic-settings
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - not a source we use
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - not a source we use
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments; the environment must win over it.
        return (env_settings, init_settings)


S = TypeVar("S", bound=XiuhuaSettings)


def read_toml(config_path: Path) -> dict[str, Any]:
    """The TOML file as a dict; ``ConfigError`` naming the file if it cannot be read."""
    try:
        with config_path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{config_path}: no such settings file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc


def load_settings(cls: type[S], config_path: Path | None = None) -> S:
    """Settings of type ``cls`` from ``config_path`` (optional) and the environment."""
    data = read_toml(config_path) if config_path is not None else {}
    try:
        return cls(**data)
    except ValidationError as exc:
        source = str(config_path) if config_path else "environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
