"""Settings of ``xiuhua edge``: ``[mqtt]``, ``[registry]``, ``[log]`` and ``[edge]``.

The same TOML file and ``XIUHUA_<SECTION>__<KEY>`` environment overrides as every Xiuhua entry
point, by the same rules (``telemetry_core.config_rules``: layering, placeholder secrets, MQTT
URLs), validated with msgspec instead of pydantic: the agent runs on small devices, and pydantic
costs ~20 MB resident, half the agent's memory goal. Precedence, highest first: environment,
TOML file, defaults. One settings file serves every command: other commands' sections
(``[influx]``, ``[ingest]``, ``[alerting]`` ...) are ignored, unknown sections and keys refused.

One device per process names ``device_id`` (its district and kind come from the fleet file in
``[registry]`` or from ``district``/``kind`` here). Gateway mode names ``gateway_id`` and hosts
every device of the fleet file (optionally one district) over one MQTT connection.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from edge_agent._config import AgentConfig
from edge_agent._spool import SpoolLimits
from telemetry_core.config_msgspec import convert_settings
from telemetry_core.config_rules import (
    MqttUrlMixin,
    is_placeholder,
    mqtt_endpoint,
    parse_sim_start,
    read_settings,
)
from telemetry_core.errors import ContractError
from telemetry_core.kinds import DeviceKind
from telemetry_core.topics import check_device_id, check_district

_DRIVER_PATTERN: Final = r"^(sim|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"


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
class MqttSection(
    msgspec.Struct, MqttUrlMixin, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """How to reach the broker (the shape of ``telemetry_core.settings.MqttSettings``)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = None
    keepalive_s: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 30
    tls: bool = False
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        mqtt_endpoint(self.url)  # ValueError naming the URL; msgspec reports it at $.mqtt
        if self.password is not None and is_placeholder(self.password.get_secret_value()):
            raise ValueError("mqtt.password is a placeholder; set a real secret")


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
    # When simulated time starts: "now", "-6h" (before now) or an ISO 8601 time with a zone.
    sim_start: str = "now"
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
        try:
            parse_sim_start(self.sim_start, time.time())
        except ValueError as exc:
            raise ValueError(f"edge.sim_start {exc}") from exc

    @property
    def simulated_time(self) -> bool:
        """Whether the agent runs on simulated time (a speed other than 1, or a set start)."""
        return self.sim_speed != 1.0 or self.sim_start.strip() != "now"

    def sim_start_s(self, now_s: float) -> float:
        """Epoch seconds at which simulated time starts, ``now_s`` being the wall clock now."""
        return parse_sim_start(self.sim_start, now_s)

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


def load_edge_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> EdgeSettings:
    """Settings from ``config_path`` (optional) and ``XIUHUA_*`` variables; ``ConfigError`` else."""
    env = os.environ if environ is None else environ
    layers = read_settings(config_path, env, own=EdgeSettings.__struct_fields__)
    return convert_settings(layers, EdgeSettings, dec_hook=_decode_custom)


def _decode_custom(type_: type, value: object) -> object:
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected a string for {type_.__name__}, got {type(value).__name__}")
