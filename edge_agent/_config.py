"""The agent's remote-configurable behaviour: validated, applied atomically, persisted.

A ``set_config`` command carries a partial config: each top-level key it names replaces the
current value whole (``deadbands`` is replaced as a mapping, not merged key by key), so what
the operator sends is exactly what is in force afterwards. The merged result is validated
against the device kind before anything changes; a refused command leaves the old config and
version untouched.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from edge_agent.errors import AgentConfigError
from telemetry_core.kinds import DeviceKind, kind_spec

# msgspec, not pydantic: the agent runs on small devices, and pydantic's core alone costs a
# resident ~18 MB that the agent's memory goal (< 40 MB) cannot afford. Range constraints
# (``Meta``) are checked on decode (``parse_config``); cross-field rules in ``__post_init__``.


class Threshold(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A local critical limit on one metric; crossing it publishes an event at once."""

    high: float | None = None
    low: float | None = None
    # Hysteresis stops a value hovering at the limit from sending an event every sample.
    hysteresis: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    severity: Literal["warning", "critical"] = "critical"

    def __post_init__(self) -> None:
        limits = [v for v in (self.high, self.low, self.hysteresis) if v is not None]
        if not all(math.isfinite(v) for v in limits):
            raise ValueError("threshold limits must be finite numbers")
        if self.high is None and self.low is None:
            raise ValueError("a threshold needs high, low or both")
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError(f"threshold low {self.low} must be below high {self.high}")


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a device does with its readings; every field can be changed remotely."""

    interval_s: Annotated[float, msgspec.Meta(ge=0.05, le=86_400.0)] = 60.0
    max_silence_s: Annotated[float, msgspec.Meta(ge=0.05, le=7 * 86_400.0)] = 900.0
    median_window: Annotated[int, msgspec.Meta(ge=1, le=15)] = 3
    deadbands: dict[str, float] = {}
    thresholds: dict[str, Threshold] = {}

    def __post_init__(self) -> None:
        if self.median_window % 2 == 0:
            raise ValueError(f"median_window must be odd, got {self.median_window}")
        if self.max_silence_s < self.interval_s:
            raise ValueError(
                f"max_silence_s {self.max_silence_s} is shorter than interval_s {self.interval_s}"
            )
        bad = {k: v for k, v in self.deadbands.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"deadbands must be finite and >= 0: {bad}")

    def check_metrics(self, kind: DeviceKind) -> None:
        """Raise ``AgentConfigError`` if a deadband or threshold names a metric ``kind`` lacks."""
        known = kind_spec(kind).metrics
        unknown = sorted((set(self.deadbands) | set(self.thresholds)) - set(known))
        if unknown:
            raise AgentConfigError(f"unknown metrics for {kind.value}: {', '.join(unknown)}")

    def to_builtins(self) -> dict[str, Any]:
        """Plain JSON-able data (what ``parse_config`` reads back)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def parse_config(data: Mapping[str, Any], kind: DeviceKind) -> AgentConfig:
    """A validated config from plain data; ``AgentConfigError`` says what is wrong and where."""
    try:
        # strict=False: a TOML/JSON "60" or 60 both mean 60.0 seconds.
        config = msgspec.convert(dict(data), AgentConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise AgentConfigError(f"config: {exc}") from exc
    config.check_metrics(kind)
    return config


def merge_config(current: AgentConfig, patch: Mapping[str, Any], kind: DeviceKind) -> AgentConfig:
    """``current`` with the top-level keys of ``patch`` replaced, validated as a whole."""
    if not patch:
        raise AgentConfigError("set_config needs at least one key in 'config'")
    merged = current.to_builtins()
    merged.update(patch)
    return parse_config(merged, kind)


@dataclass(frozen=True, slots=True)
class VersionedConfig:
    """A config and its version; the version grows by one with each applied change."""

    config: AgentConfig
    version: int
    last_cmd_id: str = ""


class ConfigStore:
    """The device's config in a JSON file, replaced atomically (write, fsync, rename, fsync dir).

    A power cut leaves either the old file or the new one, never half of one; that is why a
    half-applied command cannot exist after a restart.
    """

    def __init__(self, path: Path, kind: DeviceKind, defaults: AgentConfig) -> None:
        self._path = path
        self._kind = kind
        self._defaults = defaults

    @property
    def path(self) -> Path:
        """The JSON file."""
        return self._path

    def load(self) -> VersionedConfig:
        """The stored config, or the defaults at version 0 if nothing was stored yet."""
        if not self._path.exists():
            return VersionedConfig(self._defaults, 0)
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            config = parse_config(raw["config"], self._kind)
            return VersionedConfig(config, int(raw["version"]), str(raw.get("last_cmd_id", "")))
        except (OSError, ValueError, KeyError, TypeError, AgentConfigError) as exc:
            raise AgentConfigError(f"{self._path}: stored config unreadable: {exc}") from exc

    def save(self, versioned: VersionedConfig) -> None:
        """Persist ``versioned`` atomically."""
        body = {
            "version": versioned.version,
            "last_cmd_id": versioned.last_cmd_id,
            "config": versioned.config.to_builtins(),
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(self._path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(body, handle, sort_keys=True, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self._path)
        _fsync_dir(self._path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry itself reaches the disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
