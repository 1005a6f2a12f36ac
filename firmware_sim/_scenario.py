"""Scenarios: YAML files describing a day (or a storm) for the whole fleet, validated at load.

Times in a scenario (``start_h``, ``duration_h``) are hours from the simulation's start; the whole
scenario repeats with the period ``duration_h`` if a simulation runs longer than it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_sim._rain import DEFAULT_HOUR_RATIO, check_typhoon
from firmware_sim.errors import ScenarioError
from telemetry_core.kinds import DeviceKind, kind_spec
from telemetry_core.topics import TAIZHOU_DISTRICTS

SCENARIO_DIR = Path(__file__).parent / "scenarios"

Hours = Annotated[float, Field(ge=0.0)]
PositiveHours = Annotated[float, Field(gt=0.0)]
Fraction = Annotated[float, Field(gt=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DesignStorm(_Model):
    """A Chicago design storm for a return period (GB 50014 intensity)."""

    kind: Literal["design_storm"]
    start_h: Hours
    return_period_y: Annotated[float, Field(gt=0.0, le=1000.0)]
    duration_min: Annotated[float, Field(ge=10.0, le=1440.0)]
    peak_ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.4


class TyphoonRain(_Model):
    """A long, intense typhoon rainstorm with rain bands.

    ``peak_mm_h`` is the highest 5-minute mean intensity, ``wettest_hour_mm`` the most rain in
    any 60 minutes (default 0.6 × the peak), ``total_mm`` the storm's depth; the hyetograph holds
    all three exactly at the storm's reference point.
    """

    kind: Literal["typhoon"]
    start_h: Hours
    duration_h: Annotated[float, Field(ge=1.0, le=96.0)]
    total_mm: Annotated[float, Field(gt=0.0, le=1500.0)]
    peak_mm_h: Annotated[float, Field(gt=0.0, le=300.0)]
    wettest_hour_mm: Annotated[float, Field(gt=0.0, le=300.0)] | None = None

    @model_validator(mode="after")
    def _figures_fit(self) -> TyphoonRain:
        hour = DEFAULT_HOUR_RATIO * self.peak_mm_h
        check_typhoon(self.duration_h, self.total_mm, self.peak_mm_h, self.wettest_hour_mm or hour)
        return self


class StormSurge(_Model):
    """A storm surge on top of the tide at coastal outfalls: a sin² rise and fall."""

    peak_m: Annotated[float, Field(gt=0.0, le=6.0)]
    peak_h: Hours
    duration_h: Annotated[float, Field(gt=0.0, le=96.0)] = 12.0


RainEvent = Annotated[DesignStorm | TyphoonRain, Field(discriminator="kind")]


class Selection(_Model):
    """Which devices an entry applies to (kind, district, ids, then a random fraction) and when."""

    start_h: Hours = 0.0
    duration_h: PositiveHours = 1e9
    kinds: tuple[DeviceKind, ...] | None = None
    districts: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    fraction: Fraction = 1.0

    @model_validator(mode="after")
    def _known_districts(self) -> Selection:
        unknown = sorted(set(self.districts or ()) - set(TAIZHOU_DISTRICTS))
        if unknown:
            raise ValueError(f"unknown districts {unknown}; want some of {list(TAIZHOU_DISTRICTS)}")
        return self

    @property
    def end_h(self) -> float:
        """When the entry stops applying."""
        return self.start_h + self.duration_h


SensorFaultType = Literal["noise", "drift", "stuck", "spike", "dropout", "battery", "clock_skew"]


class SensorFault(Selection):
    """An imperfect sensor: what goes wrong, on which metric, how much, how often."""

    type: SensorFaultType
    metric: str | None = None
    magnitude: float = 1.0
    probability: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    whole_device: bool = False

    @model_validator(mode="after")
    def _metric_of_kinds(self) -> SensorFault:
        if self.metric is None:
            return self
        if not self.kinds:
            raise ValueError(f"metric {self.metric!r} needs 'kinds' to say whose metric it is")
        for kind in self.kinds:
            if self.metric not in kind_spec(kind).metrics:
                raise ValueError(f"{kind.value} devices have no metric {self.metric!r}")
        return self


IncidentType = Literal["blocked_pan", "leak", "fan_failure", "fire"]
INCIDENT_KIND = {
    "blocked_pan": DeviceKind.TOILET,
    "leak": DeviceKind.TOILET,
    "fan_failure": DeviceKind.TOILET,
    "fire": DeviceKind.GARBAGE,
}


class Incident(Selection):
    """A physical fault of a device: toilet blocked pan, leak, fan failure; garbage-station fire."""

    type: IncidentType


class Crowd(Selection):
    """More people than usual (a festival): toilet footfall and garbage fill are multiplied."""

    multiplier: Annotated[float, Field(gt=0.0, le=50.0)]


class MissedCollection(Selection):
    """Collections skipped at the selected stations in the window: every bin, or ``categories``."""

    categories: tuple[Literal["kitchen", "recyclable", "hazardous", "other"], ...] | None = None


class Scenario(_Model):
    """A validated scenario."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    title: Annotated[str, Field(min_length=1, max_length=120)]
    description: str = ""
    duration_h: Annotated[float, Field(gt=0.0, le=24.0 * 14)] = 24.0
    rain: tuple[RainEvent, ...] = ()
    storm_surge: StormSurge | None = None
    collection_hours: tuple[Annotated[float, Field(ge=0.0, lt=24.0)], ...] = (7.0, 19.0)
    baseline_noise: bool = True
    crowds: tuple[Crowd, ...] = ()
    sensor_faults: tuple[SensorFault, ...] = ()
    incidents: tuple[Incident, ...] = ()
    missed_collections: tuple[MissedCollection, ...] = ()
    outages: tuple[Selection, ...] = ()

    @model_validator(mode="after")
    def _windows_start_inside(self) -> Scenario:
        groups = (self.crowds, self.sensor_faults, self.incidents, self.missed_collections)
        for group in (*groups, self.outages, self.rain):
            for entry in group:
                if entry.start_h >= self.duration_h:
                    raise ValueError(
                        f"an entry starts at {entry.start_h} h, after the scenario's "
                        f"{self.duration_h} h"
                    )
        return self

    @property
    def duration_s(self) -> float:
        """The scenario's period in seconds."""
        return self.duration_h * 3600.0


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """A scenario file as listed by ``xiuhua sim scenarios``."""

    name: str
    title: str
    description: str
    path: Path


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name, or a scenario file by path; ``ScenarioError`` if bad."""
    path = _resolve(name_or_path)
    if not path.is_file():
        known = ", ".join(i.name for i in list_scenarios())
        raise ScenarioError(f"{path}: no such scenario file (built-in scenarios: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: want a mapping of scenario fields at the top level")
    raw.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_format_errors(exc)}") from exc


def list_scenarios() -> list[ScenarioInfo]:
    """The built-in scenarios, sorted by name (each file is loaded, so a bad one fails loudly)."""
    infos = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        sc = load_scenario(path)
        infos.append(ScenarioInfo(sc.name, sc.title, sc.description.strip(), path))
    return infos
