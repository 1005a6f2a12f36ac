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
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from telemetry_core.config_rules import (
    MqttUrlMixin,
    Problem,
    is_placeholder,
    mqtt_endpoint,
    read_settings,
    read_toml,
    unknown_key,
)

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

    ``environ`` defaults to ``os.environ``; only variables of ``cls``'s sections are read, and
    other commands' sections of the file are ignored. ``ConfigError`` naming, for every problem
    found, the environment variable or the file and line, the key, and what is wrong.
    """
    env = os.environ if environ is None else environ
    layers = read_settings(config_path, env, own=cls.model_fields)
    try:
        return cls.model_validate(layers.data)
    except ValidationError as exc:
        raise layers.error(_problem(cls, err) for err in exc.errors()) from exc


_PLAIN: dict[str, str] = {
    "missing": "required",
    "int_parsing": "want a whole number",
    "int_type": "want a whole number",
    "int_from_float": "want a whole number",
    "float_parsing": "want a number",
    "float_type": "want a number",
    "bool_parsing": "want true or false",
    "bool_type": "want true or false",
    "string_type": "want a string",
    "path_type": "want a path (a string)",
    "model_type": "want a table",
    "dict_type": "want a table",
    "list_type": "want an array",
}
_BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
_SECRET_KEYS = frozenset({"password", "token"})


def _problem(cls: type[BaseModel], err: ErrorDetails) -> Problem:
    """A pydantic error in the words every Xiuhua command uses (no library jargon)."""
    loc = tuple(err["loc"])
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return Problem(loc, unknown_key(str(loc[-1]), _fields_at(cls, loc[:-1])))
    if kind == "value_error":
        return Problem(loc, str(ctx.get("error", err["msg"])))
    if kind == "literal_error":
        message = f"want one of {ctx['expected']}"
    elif kind == "string_pattern_mismatch":
        message = f"want text matching {ctx['pattern']}"
    elif bound := next((b for b in _BOUNDS if b in ctx), None):
        message = f"want {_BOUNDS[bound]} {ctx[bound]}"
    else:
        message = _PLAIN.get(kind, err["msg"])
    return Problem(loc, message + _got(loc, err["input"]))


def _got(loc: tuple[str | int, ...], value: Any) -> str:
    if loc and loc[-1] in _SECRET_KEYS:
        return ""  # never echo a secret, not even a wrong one
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        return f", got {value!r}"
    return ""


def _fields_at(cls: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys of the section at ``loc`` (for "did you mean"); empty if it is not a model."""
    model: Any = cls
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        model = info.annotation if info is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return list(model.model_fields)
