"""The settings rules every Xiuhua entry point shares, written once and without pydantic.

``telemetry_core.settings`` (pydantic models, for the cloud side) and ``edge_agent``'s msgspec
settings (for small devices, where pydantic would cost ~20 MB resident) both build on these:

* where values come from: one TOML file, overridden by ``XIUHUA_<SECTION>__<KEY>`` environment
  variables (:func:`read_layers`); precedence, highest first: environment, file, defaults;
* which sections a command reads: one settings file serves every command, so each takes its
  own sections and ignores the others' (:data:`KNOWN_SECTIONS`); an unknown section is a typo
  and refused (:func:`read_settings`);
* how a settings error reads, whatever library validated it: the place (the environment
  variable, or the file and line), the dotted key and a plain message, with "did you mean"
  for a near-miss key (:class:`Problem`, :meth:`Layers.error`);
* which secrets are placeholders (:data:`PLACEHOLDER_SECRETS`, :func:`is_placeholder`);
* how an MQTT URL names the broker (:func:`mqtt_endpoint`);
* when simulated time starts (:func:`parse_sim_start`), and how long things last
  (:func:`parse_duration`: always with a unit, since a bare ``90`` could mean seconds or minutes).

This module imports only the standard library, so the edge agent can use it on a device.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from telemetry_core.errors import ConfigError

ENV_PREFIX: Final = "XIUHUA_"
ENV_DELIMITER: Final = "__"

PLACEHOLDER_SECRETS: Final = frozenset(
    {"changeme", "change-me", "password", "secret", "xxx", "todo"}
)
"""Secrets copied from a template: refused, so they never reach a broker or a database."""

KNOWN_SECTIONS: Final = frozenset(
    {"mqtt", "influx", "registry", "log", "ingest", "edge", "alerting", "dispatch", "dashboards"}
)
"""Every top-level section of the settings file, across all commands. A command reads its own
and ignores the rest; a section named nowhere here is a typo, refused with "did you mean"."""

_MQTT_SCHEMES: Final = {"mqtt": 1883, "mqtts": 8883}
_OFFSET: Final = re.compile(r"-(\d+(?:\.\d+)?)([smhd])")
_UNIT_S: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_TABLE: Final = re.compile(r"\[\s*([^\[\]]+?)\s*\](?:\s*#.*)?")
_ASSIGNMENT: Final = re.compile(r"\s*(\"[^\"]+\"|[A-Za-z0-9_-]+)\s*=")


def is_placeholder(secret: str) -> bool:
    """Whether ``secret`` is a template placeholder such as ``changeme`` (any case, padded)."""
    return secret.strip().lower() in PLACEHOLDER_SECRETS


class MqttEndpoint(NamedTuple):
    """Where the broker is and whether to speak TLS to it."""

    host: str
    port: int
    use_tls: bool


def mqtt_endpoint(url: str, tls: bool = False) -> MqttEndpoint:
    """Host, port and TLS of ``mqtt://host[:port]`` or ``mqtts://host[:port]``.

    The port defaults to 1883, or 8883 for ``mqtts``; TLS is on for ``mqtts`` or when ``tls``
    says so. ``ValueError`` (naming the URL) for another scheme, no host or a bad port.
    """
    parts = urlsplit(url)
    if parts.scheme not in _MQTT_SCHEMES or not parts.hostname:
        raise ValueError(f"{url!r}: want mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port
    except ValueError as exc:  # urlsplit refuses ports that are not 0-65535 only when asked
        raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from exc
    return MqttEndpoint(
        parts.hostname, port or _MQTT_SCHEMES[parts.scheme], tls or parts.scheme == "mqtts"
    )


class MqttUrlMixin:
    """``host``, ``port`` and ``use_tls`` of a settings section that has ``url`` and ``tls``.

    Mixed into both MQTT sections (pydantic's ``MqttSettings``, the agent's msgspec
    ``MqttSection``) so the two read a URL the same way.
    """

    __slots__ = ()
    url: str
    tls: bool

    @property
    def host(self) -> str:
        """The broker's host name."""
        return mqtt_endpoint(self.url, self.tls).host

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts, when not given)."""
        return mqtt_endpoint(self.url, self.tls).port

    @property
    def use_tls(self) -> bool:
        """Whether to speak TLS: ``tls = true`` or an ``mqtts://`` URL."""
        return mqtt_endpoint(self.url, self.tls).use_tls


def parse_sim_start(text: str, now_s: float) -> float:
    """When simulated time starts, in epoch seconds: ``now``, ``-1h`` (an offset before
    ``now_s``; units s, m, h, d) or an ISO 8601 timestamp with a zone (``2026-08-10T00:00:00Z``).

    ``ValueError`` for anything else, including a time without a zone (ambiguous) and a start in
    the future (its readings would carry future timestamps, which the ingester rejects).
    """
    value = text.strip()
    if value == "now":
        return now_s
    offset = _OFFSET.fullmatch(value)
    if offset is not None:
        return now_s - float(offset.group(1)) * _UNIT_S[offset.group(2)]
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r}: want 'now', a negative offset such as '-1h' or '-90m', "
            "or an ISO 8601 time with a zone such as '2026-08-10T00:00:00Z'"
        ) from None
    if at.tzinfo is None:
        raise ValueError(f"{text!r}: give the time zone, e.g. '{value}Z' for UTC")
    start_s = at.timestamp()
    if start_s > now_s:
        raise ValueError(f"{text!r} is in the future; simulated time must start at or before now")
    return start_s


def parse_duration(text: str) -> float:
    """Seconds in ``"30s"``, ``"15m"``, ``"6h"`` or ``"2d"`` (a positive number and a unit).

    ``ValueError`` otherwise; a bare number is refused with the readings it could have
    (``"90s? 90m?"``), since seconds and minutes are both plausible.
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is not None and float(match.group(1)) > 0:
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    if _NUMBER.fullmatch(value):
        raise ValueError(f"{text!r} has no unit: {value}s? {value}m? (units s, m, h, d)")
    raise ValueError(
        f"{text!r}: want a positive number with a unit s, m, h or d, such as 90s or 6h"
    )


def read_toml(config_path: Path) -> dict[str, Any]:
    """The TOML file as a dict; ``ConfigError`` naming the file if it cannot be read."""
    try:
        with config_path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{config_path}: no such settings file") from exc
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc


def read_layers(
    config_path: Path | None,
    environ: Mapping[str, str],
    sections: Collection[str] | None = None,
) -> dict[str, Any]:
    """The TOML file (optional) with ``XIUHUA_<SECTION>__<KEY>[__<SUBKEY>]`` variables merged in.

    Names are case-insensitive. Only ``sections`` are taken from the environment (all when
    None): another command's variables (``XIUHUA_INGEST__...`` for the edge agent) are not
    ours and are ignored. Tables and arrays come as JSON; scalars stay strings, for the model
    to convert to the field's type. ``ConfigError`` for an unreadable file or bad JSON.
    """
    data = read_toml(config_path) if config_path is not None else {}
    wanted = None if sections is None else {s.lower() for s in sections}
    _merge_environ(data, environ, wanted, {})
    return data


def _merge_environ(
    data: dict[str, Any],
    environ: Mapping[str, str],
    wanted: Collection[str] | None,
    origins: dict[tuple[str, ...], str],
) -> None:
    for name, raw in sorted(environ.items()):
        path = _env_path(name)
        if path is None or (wanted is not None and path[0] not in wanted):
            continue
        _set_nested(data, name, path, _env_value(name, raw))
        origins[tuple(path)] = name


def _env_path(name: str) -> list[str] | None:
    """``XIUHUA_EDGE__DEFAULTS__DEADBANDS`` -> ``["edge", "defaults", "deadbands"]``."""
    if not name.upper().startswith(ENV_PREFIX):
        return None
    path = name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER)
    return path if len(path) >= 2 and all(path) else None


def _set_nested(data: dict[str, Any], name: str, path: list[str], value: Any) -> None:
    target = data
    for part in path[:-1]:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a table")
        target = nested
    target[path[-1]] = value


def _env_value(name: str, raw: str) -> Any:
    # As pydantic-settings reads them: tables and arrays as JSON, everything else a string that
    # the model converts ("30" becomes an int for an int field).
    if raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not valid JSON: {exc}") from exc
    return raw


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'url'?"`` for a near miss among ``candidates``, else ``""``."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The message for a key the section does not have, with the closest known one."""
    return f"unknown key {key!r}{did_you_mean(key, known)}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the settings: where (section, key, ...) and what, in plain words."""

    loc: tuple[str | int, ...]
    message: str

    @property
    def key(self) -> str:
        """``edge.defaults.median_window``: the dotted path, or ``settings`` for the top."""
        return ".".join(str(p) for p in self.loc) or "settings"


@dataclass(frozen=True, slots=True)
class Layers:
    """The merged settings data of one command, and where each value came from."""

    data: dict[str, Any]
    config_path: Path | None = None
    from_env: Mapping[tuple[str, ...], str] = field(default_factory=dict)
    """The variable that set each key path taken from the environment."""

    def where(self, loc: Sequence[str | int]) -> str:
        """The variable that set ``loc`` (or a table holding it), else ``file:line``; for a
        whole section, also the variables that set keys inside it."""
        path = tuple(str(p) for p in loc)
        for depth in range(len(path), 0, -1):
            variable = self.from_env.get(path[:depth])
            if variable is not None:
                return variable
        inside = sorted(v for k, v in self.from_env.items() if path and k[: len(path)] == path)
        place = self._file_place(path)
        if not inside:
            return place or "settings (defaults)"
        return f"{place} (with {', '.join(inside)})" if place else ", ".join(inside)

    def _file_place(self, path: tuple[str, ...]) -> str | None:
        if self.config_path is None:
            return None
        line = toml_line(self.config_path, path)
        return f"{self.config_path}:{line}" if line else str(self.config_path)

    def error(self, problems: Iterable[Problem]) -> ConfigError:
        """One ``ConfigError`` listing every problem as ``place: key: message``."""
        lines = [f"{self.where(p.loc)}: {p.key}: {p.message}" for p in problems]
        if len(lines) == 1:
            return ConfigError(lines[0])
        return ConfigError(f"{len(lines)} problems in the settings:\n  " + "\n  ".join(lines))


def read_settings(
    config_path: Path | None, environ: Mapping[str, str], own: Collection[str]
) -> Layers:
    """The file's ``own`` sections with the environment's merged in; other commands' sections
    (:data:`KNOWN_SECTIONS`) dropped. ``ConfigError`` for an unknown section, in the file or in
    a variable's name (``XIUHUA_INGETS__BATCH_SIZE``)."""
    data = read_toml(config_path) if config_path is not None else {}
    known = KNOWN_SECTIONS | set(own)
    from_env = {path[0]: name for name in environ if (path := _env_path(name)) is not None}
    unknown = [Problem((k,), _unknown_section(k, known)) for k in data if k not in known]
    unknown += [Problem((k,), _unknown_section(k, known)) for k in from_env if k not in known]
    if unknown:
        raise Layers(data, config_path, {(k,): v for k, v in from_env.items()}).error(unknown)
    mine = {k: v for k, v in data.items() if k in own}
    origins: dict[tuple[str, ...], str] = {}
    _merge_environ(mine, environ, {s.lower() for s in own}, origins)
    return Layers(mine, config_path, origins)


def _unknown_section(name: str, known: Collection[str]) -> str:
    listed = ", ".join(sorted(known))
    return f"unknown section{did_you_mean(name, known)} (sections: {listed})"


def toml_line(path: Path, loc: Sequence[str]) -> int | None:
    """The line of ``path`` that sets ``loc`` (``("edge", "seed")``), or its table's header."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    table: tuple[str, ...] = ()
    header_at: int | None = None
    for number, raw in enumerate(lines, start=1):
        header = _TABLE.fullmatch(raw.strip())
        if header is not None:
            table = tuple(part.strip().strip('"') for part in header.group(1).split("."))
            header_at = number if table == tuple(loc) else header_at
            continue
        assignment = _ASSIGNMENT.match(raw)
        if assignment is not None and (*table, assignment.group(1).strip('"')) == tuple(loc):
            return number
    return header_at
