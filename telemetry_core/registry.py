"""The device registry: a fleet file of devices and their static attributes.

CSV with a header ``device_id,kind,district,lat,lon,expected_interval_s`` followed by attribute
columns (blank cells mean "not applicable to this kind"), or YAML: a list of mappings with the same
keys, attributes either inline or under ``attributes``. Every error names the file and the line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

import yaml

from telemetry_core.errors import ContractError, RegistryError
from telemetry_core.kinds import DeviceKind
from telemetry_core.topics import check_device_id, check_district

REQUIRED_COLUMNS: Final = ("device_id", "kind", "district", "lat", "lon", "expected_interval_s")


@dataclass(frozen=True, slots=True)
class Device:
    """One field device and its static attributes."""

    device_id: str
    kind: DeviceKind
    district: str
    lat: float
    lon: float
    expected_interval_s: float
    attributes: Mapping[str, float | str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        check_district(self.district)
        object.__setattr__(self, "kind", DeviceKind(self.kind))
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ContractError(f"{self.device_id}: lat/lon {self.lat},{self.lon} out of range")
        if not (math.isfinite(self.expected_interval_s) and self.expected_interval_s > 0):
            interval = self.expected_interval_s
            raise ContractError(
                f"{self.device_id}: expected_interval_s must be positive, got {interval}"
            )
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def attr(self, name: str) -> float:
        """A numeric attribute; ``RegistryError`` if it is missing or not a number."""
        value = self.attributes.get(name)
        if isinstance(value, float | int) and not isinstance(value, bool):
            return float(value)
        raise RegistryError(f"{self.device_id}: attribute {name!r} is {value!r}, want a number")


class Registry:
    """Devices by id, with look-ups by kind."""

    def __init__(self, devices: Iterable[Device]) -> None:
        table: dict[str, Device] = {}
        for device in devices:
            if device.device_id in table:
                raise RegistryError(f"duplicate device id {device.device_id!r}")
            table[device.device_id] = device
        self._devices: Mapping[str, Device] = MappingProxyType(table)

    @classmethod
    def from_located(cls, located: Iterable[tuple[str, Device]]) -> Registry:
        """A registry from ``(where, device)`` pairs; a duplicate names both places."""
        first_seen: dict[str, str] = {}
        devices = []
        for where, device in located:
            if device.device_id in first_seen:
                raise RegistryError(
                    f"{where}: duplicate device id {device.device_id!r} "
                    f"(first at {first_seen[device.device_id]})"
                )
            first_seen[device.device_id] = where
            devices.append(device)
        return cls(devices)

    @property
    def devices(self) -> Mapping[str, Device]:
        """All devices, by id."""
        return self._devices

    def get(self, device_id: str) -> Device | None:
        """The device with this id, or ``None``."""
        return self._devices.get(device_id)

    def by_kind(self, kind: DeviceKind | str) -> list[Device]:
        """The devices of one kind, in file order."""
        wanted = DeviceKind(kind)
        return [d for d in self._devices.values() if d.kind is wanted]

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self._devices.values())


def _attribute_value(raw: str) -> float | str:
    try:
        value = float(raw)
    except ValueError:
        return raw
    return value if math.isfinite(value) else raw


def _device_from_row(row: Mapping[str, Any], where: str) -> Device:
    missing = [c for c in REQUIRED_COLUMNS if row.get(c) in (None, "")]
    if missing:
        raise RegistryError(f"{where}: no value in column {', '.join(missing)}")
    attributes = dict(row.get("attributes") or {})
    attributes.update(
        {
            key: value
            for key, value in row.items()
            if key not in REQUIRED_COLUMNS and key != "attributes" and value not in (None, "")
        }
    )
    device_id = _column(row, "device_id", where, check_device_id)
    try:
        return Device(
            device_id=device_id,
            kind=_column(row, "kind", where, _kind),
            district=_column(row, "district", where, check_district),
            lat=_column(row, "lat", where, lambda raw: _number(raw, -90.0, 90.0)),
            lon=_column(row, "lon", where, lambda raw: _number(raw, -180.0, 180.0)),
            expected_interval_s=_column(row, "expected_interval_s", where, _interval_s),
            attributes={
                k: _attribute_value(v) if isinstance(v, str) else v for k, v in attributes.items()
            },
        )
    except (ValueError, TypeError) as exc:  # the attributes
        raise RegistryError(f"{where}: {device_id}: {exc}") from exc


T = TypeVar("T")


def _column(row: Mapping[str, Any], column: str, where: str, parse: Callable[[str], T]) -> T:
    """``parse`` of the column's text; ``RegistryError`` naming the place and the column."""
    try:
        return parse(str(row[column]).strip())
    except (ValueError, TypeError) as exc:  # ContractError is a ValueError
        raise RegistryError(f"{where}: column {column}: {exc}") from exc


def _kind(raw: str) -> DeviceKind:
    try:
        return DeviceKind(raw)
    except ValueError:
        kinds = ", ".join(k.value for k in DeviceKind)
        raise ValueError(f"{raw!r} is not a device kind; want one of {kinds}") from None


def _number(raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{raw} is outside {low:g} to {high:g}")
    return value


def _interval_s(raw: str) -> float:
    value = _number(raw, -math.inf, math.inf)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{raw}: want a positive number of seconds")
    return value


def _load_csv(path: Path) -> Iterator[tuple[str, Device]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            raise RegistryError(
                f"{path}:1: header lacks column {', '.join(absent)} (a fleet file has "
                f"{', '.join(REQUIRED_COLUMNS)}, then attribute columns)"
            )
        for row in reader:
            if None in row:
                raise RegistryError(f"{path}:{reader.line_num}: more cells than header columns")
            where = f"{path}:{reader.line_num}"
            yield where, _device_from_row(row, where)


def _load_yaml(path: Path) -> Iterator[tuple[str, Device]]:
    try:
        nodes = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    if nodes is None:
        return
    if not isinstance(nodes, yaml.SequenceNode):
        raise RegistryError(f"{path}:{nodes.start_mark.line + 1}: want a list of devices")
    for node in nodes.value:
        where = f"{path}:{node.start_mark.line + 1}"
        row = yaml.safe_load(yaml.serialize(node))
        if not isinstance(row, dict):
            raise RegistryError(f"{where}: want a mapping of device fields")
        yield where, _device_from_row(row, where)


def load_registry(path: Path) -> Registry:
    """Load and validate a fleet file (``.csv``, ``.yaml`` or ``.yml``)."""
    if not path.is_file():
        raise RegistryError(f"{path}: no such fleet file")
    loaders = {".csv": _load_csv, ".yaml": _load_yaml, ".yml": _load_yaml}
    loader = loaders.get(path.suffix.lower())
    if loader is None:
        raise RegistryError(f"{path}: want a .csv, .yaml or .yml fleet file")
    try:
        return Registry.from_located(loader(path))
    except ContractError as exc:
        raise RegistryError(f"{path}: {exc}") from exc


def write_registry_csv(devices: Iterable[Device], path: Path) -> None:
    """Write devices as a CSV fleet file; attribute columns are the union, sorted."""
    rows = list(devices)
    attribute_columns = sorted({k for d in rows for k in d.attributes})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*REQUIRED_COLUMNS, *attribute_columns])
        for d in rows:
            base = [d.device_id, d.kind.value, d.district, f"{d.lat:.6f}", f"{d.lon:.6f}"]
            extra = [_format_attr(d.attributes.get(c)) for c in attribute_columns]
            writer.writerow([*base, f"{d.expected_interval_s:g}", *extra])


def _format_attr(value: float | str | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
