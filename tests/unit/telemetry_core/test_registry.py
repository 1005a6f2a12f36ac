"""Fleet files: CSV and YAML, validated, with errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry_core.errors import RegistryError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry, load_registry, write_registry_csv

HEADER = "device_id,kind,district,lat,lon,expected_interval_s,pipe_diameter_m,stalls\n"


def _write(tmp_path: Path, text: str, name: str = "fleet.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_csv_with_attributes(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        HEADER
        + "dr-jj-000001,drain,jiaojiang,28.65,121.42,60,0.8,\n"
        + "wc-jj-000001,toilet,jiaojiang,28.66,121.43,60,,6\n",
    )
    registry = load_registry(path)
    assert len(registry) == 2
    drain = registry.get("dr-jj-000001")
    assert drain is not None
    assert drain.kind is DeviceKind.DRAIN
    assert drain.attr("pipe_diameter_m") == 0.8
    assert "stalls" not in drain.attributes
    assert [d.device_id for d in registry.by_kind("toilet")] == ["wc-jj-000001"]
    assert "dr-jj-000001" in registry
    assert "nope" not in registry


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "dr-jj-000002,sewer,jiaojiang,28.6,121.4,60,0.8,\n",
            (
                "fleet.csv:3: column kind: 'sewer' is not a device kind; "
                "want one of drain, toilet, garbage, rain"
            ),
        ),
        ("DR_bad,drain,jiaojiang,28.6,121.4,60,0.8,\n", "fleet.csv:3: column device_id: "),
        ("dr-jj-000002,drain,jiaojiang,95,121.4,60,0.8,\n", "fleet.csv:3: column lat: 95 is "),
        ("dr-jj-000002,drain,jiaojiang,28.6,121.4,0,0.8,\n", "fleet.csv:3: column expected_"),
        ("dr-jj-000002,drain,,28.6,121.4,60,0.8,\n", "fleet.csv:3: no value in column district"),
        (
            "dr-jj-000002,drain,jiaojiang,north,121.4,60,0.8,\n",
            "fleet.csv:3: column lat: 'north' is not a number",
        ),
        ("dr-jj-000002,drain,Jiao Jiang,28.6,121.4,60,0.8,\n", "fleet.csv:3: column district: "),
        ("dr-jj-000002,drain,jiaojiang,28.6,121.4,60,0.8,,extra\n", "fleet.csv:3: more cells"),
    ],
)
def test_csv_errors_name_the_line(tmp_path: Path, row: str, message: str) -> None:
    path = _write(tmp_path, HEADER + "dr-jj-000001,drain,jiaojiang,28.65,121.42,60,0.8,\n" + row)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(info.value).startswith(f"{tmp_path}/"), info.value
    assert message.replace("fleet.csv", "") in str(info.value).replace(str(path), "")


def test_csv_header_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="header lacks column lat, lon, expected_interval_s"):
        load_registry(_write(tmp_path, "device_id,kind,district\n"))
    dup = HEADER + "dr-jj-000001,drain,jiaojiang,28.6,121.4,60,0.8,\n" * 2
    with pytest.raises(RegistryError, match=r"fleet.csv:3: duplicate device id .*first at .*:2"):
        load_registry(_write(tmp_path, dup))


def test_loads_yaml_and_names_lines(tmp_path: Path) -> None:
    text = (
        "- device_id: gb-lq-000001\n  kind: garbage\n  district: luqiao\n  lat: 28.58\n"
        "  lon: 121.37\n  expected_interval_s: 60\n  attributes: {bin_kitchen_l: 240}\n"
        "- device_id: gb-lq-000002\n  kind: garbage\n  district: luqiao\n  lat: 28.58\n"
        "  lon: 121.37\n  expected_interval_s: 60\n  bin_other_l: 660\n"
    )
    registry = load_registry(_write(tmp_path, text, "fleet.yaml"))
    assert registry.devices["gb-lq-000001"].attr("bin_kitchen_l") == 240
    assert registry.devices["gb-lq-000002"].attr("bin_other_l") == 660
    second = text.index("- device_id: gb-lq-000002")
    bad = text[:second] + text[second:].replace("  district: luqiao\n", "")
    with pytest.raises(RegistryError, match=r"fleet.yaml:8: no value in column district"):
        load_registry(_write(tmp_path, bad, "fleet.yaml"))
    with pytest.raises(RegistryError, match="want a list"):
        load_registry(_write(tmp_path, "a: 1\n", "fleet.yml"))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such fleet file"):
        load_registry(tmp_path / "absent.csv")
    with pytest.raises(RegistryError, match=r"want a \.csv"):
        load_registry(_write(tmp_path, "x", "fleet.txt"))


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    devices = [
        Device(
            "dr-jj-000001",
            DeviceKind.DRAIN,
            "jiaojiang",
            28.65,
            121.42,
            60.0,
            {"pipe_diameter_m": 0.8, "invert_elev_m": 1.2},
        ),
        Device(
            "wc-hy-000001",
            DeviceKind.TOILET,
            "huangyan",
            28.64,
            121.26,
            30.0,
            {"stalls": 6.0, "toilet_class": 2.0},
        ),
    ]
    path = tmp_path / "out.csv"
    write_registry_csv(devices, path)
    loaded = list(load_registry(path))
    assert loaded == devices


def test_attr_refuses_missing_or_text() -> None:
    device = Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {"note": "x"})
    with pytest.raises(RegistryError, match="want a number"):
        device.attr("note")
    with pytest.raises(RegistryError, match="want a number"):
        device.attr("pipe_diameter_m")
    assert len(Registry([])) == 0
