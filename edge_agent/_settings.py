"""Settings of ``xiuhua edge``: ``[mqtt]``, ``[registry]``, ``[log]`` and ``[edge]``.

The same TOML file and ``XIUHUA_<SECTION>__<KEY>`` environment overrides as every Xiuhua entry
point (``telemetry_core.settings``), read with msgspec instead of pydantic-settings: the agent
runs on small devices, and pydantic plus pydantic-settings cost ~20 MB resident, half the
agent's memory goal. Precedence, highest first: environment, TOML file, defaults. ``[influx]``
is accepted (a shared settings file may carry it) and ignored.

One device per process names ``device_id`` (its district and kind come from the fleet file in
``[registry]`` or from ``district``/``kind`` here). Gateway mode names ``gateway_id`` and hosts
every device of the fleet file (optionally one district) over one MQTT connection.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

from edge_agent._config import AgentConfig
from edge_agent._spool import SpoolLimits
from telemetry_core.errors import ConfigError, ContractError
from telemetry_core.kinds import DeviceKind
from telemetry_core.topics import check_device_id, check_district

ENV_PREFIX: Final = "XIUHUA_"
_DRIVER_PATTERN: Final = r"^(sim|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"
# The same list as telemetry_core.settings: a copied secret template must not reach a broker.
_PLACEHOLDERS: Final = frozenset({"changeme", "change-me", "password", "secret", "xxx", "todo"})


class Secret:
    """A secret string that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself: hand it to the library that needs it, never to a log."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Every section forbids unknown keys, so typos fail loudly.
class MqttSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to reach the broker (the shape of ``telemetry_core.settings.MqttSettings``)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = None
    keepalive_s: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 30
    tls: bool = False
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"mqtt.url {self.url!r}: want mqtt://host:port or mqtts://host:port")
        secret = self.password.get_secret_value() if self.password else None
        if secret is not None and secret.strip().lower() in _PLACEHOLDERS:
            raise ValueError("mqtt.password is a placeholder; set a real secret")

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


class RegistrySection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the fleet file is."""

    path: Path | None = None


class LogSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to log: level, and JSON lines for machines or console output for people."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_lines: bool = False


class EdgeSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``[edge]`` section."""

    device_id: str | None = None
    gateway_id: str | None = None
    district: str | None = None
    kind: DeviceKind | None = None
    firmware: str = "xiuhua-edge/0.1.0"
    # "sim" (firmware_sim) or "package.module:factory", a callable (Device, Clock) -> SensorDriver
    # that real firmware provides.
    driver: str = "sim"
    scenario: str = "normal_day"
    seed: int = 1
    sim_fleet_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100
    sim_speed: Annotated[float, msgspec.Meta(gt=0.0, le=10_000.0)] = 1.0
    state_dir: Path = Path("edge-state")
    spool_max_rows: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    spool_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * 1024 * 1024
    spool_max_age_s: Annotated[float, msgspec.Meta(gt=0.0)] = 30 * 86_400.0
    spool_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    replay_rate_per_s: Annotated[float, msgspec.Meta(gt=0.0)] = 100.0
    replay_burst: Annotated[int, msgspec.Meta(ge=1)] = 100
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    session_expiry_s: Annotated[int, msgspec.Meta(ge=0)] = 7 * 86_400
    reconnect_min_s: Annotated[float, msgspec.Meta(gt=0.0)] = 0.5
    reconnect_max_s: Annotated[float, msgspec.Meta(gt=0.0)] = 30.0
    defaults: AgentConfig = AgentConfig()

    def __post_init__(self) -> None:
        if (self.device_id is None) == (self.gateway_id is None):
            raise ValueError("set exactly one of edge.device_id (one device) or edge.gateway_id")
        try:
            for ident in (self.device_id, self.gateway_id):
                if ident is not None:
                    check_device_id(ident)
            if self.district is not None:
                check_district(self.district)
        except ContractError as exc:
            raise ValueError(str(exc)) from exc
        if not re.fullmatch(_DRIVER_PATTERN, self.driver):
            raise ValueError(f"edge.driver {self.driver!r}: want 'sim' or 'package.module:factory'")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")

    @property
    def spool_path(self) -> Path:
        """The SQLite spool file inside ``state_dir``."""
        return self.state_dir / "spool.sqlite3"

    @property
    def spool_limits(self) -> SpoolLimits:
        """The spool bounds."""
        return SpoolLimits(self.spool_max_rows, self.spool_max_bytes, self.spool_max_age_s)

    def config_path(self, device_id: str) -> Path:
        """Where a device's remote-changeable config is persisted."""
        return self.state_dir / "config" / f"{device_id}.json"


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``xiuhua edge`` reads; build it with :func:`load_edge_settings`."""

    edge: EdgeSection
    mqtt: MqttSection = MqttSection()
    registry: RegistrySection = RegistrySection()
    log: LogSection = LogSection()
    influx: dict[str, Any] = {}


def load_edge_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> EdgeSettings:
    """Settings from ``config_path`` (optional) and ``XIUHUA_*`` variables; ``ConfigError`` else."""
    data = _read_toml(config_path) if config_path is not None else {}
    _apply_env(data, os.environ if environ is None else environ)
    try:
        return msgspec.convert(data, EdgeSettings, strict=False, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        source = str(config_path) if config_path else "environment"
        raise ConfigError(f"{source}: {exc}") from exc


def _read_toml(config_path: Path) -> dict[str, Any]:
    try:
        with config_path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{config_path}: no such settings file") from exc
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Merge ``XIUHUA_SECTION__KEY[__SUBKEY]`` into ``data``; other sections are not ours."""
    sections = set(EdgeSettings.__struct_fields__)
    for name, raw in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if len(path) < 2 or path[0] not in sections or not all(path):
            continue
        target = data
        for part in path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a table")
            target = nested
        target[path[-1]] = _env_value(name, raw)


def _env_value(name: str, raw: str) -> Any:
    # Tables and arrays come as JSON (as pydantic-settings reads them); scalars stay strings and
    # are converted to the field's type by msgspec (strict=False), so "30" is an int for an int.
    if raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not valid JSON: {exc}") from exc
    return raw


def _decode_custom(type_: type, value: object) -> object:
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected a string for {type_.__name__}, got {type(value).__name__}")
