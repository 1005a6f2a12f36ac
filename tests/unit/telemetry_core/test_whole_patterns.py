"""Every pattern of the project matches whole strings: a trailing newline is refused everywhere
(msgspec applies ``pattern`` with ``re.search``, and ``$`` admits a final newline)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pydantic
import pytest

import telemetry_core.schema
from cloud_ingest._settings import IngestSection
from edge_agent._settings import EdgeSection
from telemetry_core.config_rules import parse_sim_start
from telemetry_core.errors import RegistryError
from telemetry_core.registry import load_registry

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ["telemetry_core", "cloud_ingest", "edge_agent", "firmware_sim", "xiuhua", "alerting"]


def test_no_msgspec_pattern_ends_with_a_bare_dollar() -> None:
    # msgspec uses re.search: its patterns must be anchored with \A ... \Z.
    found = [
        (path.relative_to(ROOT), match.group(1))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for match in re.finditer(r"Meta\(pattern=r\"([^\"]*)\"", path.read_text("utf-8"))
    ]
    assert found, "the scan found no msgspec pattern at all"
    assert [(p, r) for p, r in found if not (r.startswith("\\A") and r.endswith("\\Z"))] == []


def test_the_schema_patterns_refuse_a_final_newline() -> None:
    for alias in ("DeviceIdStr", "IdStr", "MetricName"):
        kind = getattr(telemetry_core.schema, alias)
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert("abc\n", kind)
        assert msgspec.convert("abc", kind) == "abc"


@pytest.mark.parametrize("field", ["group", "instance"])
def test_settings_ids_refuse_a_final_newline(field: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        IngestSection.model_validate({field: "ingest\n"})


@pytest.mark.parametrize(
    "changes",
    [{"device_id": "dr-jj-000001\n"}, {"district": "jiaojiang\n"}, {"driver": "pkg.mod:fn\n"}],
)
def test_edge_settings_refuse_a_final_newline(changes: dict[str, str]) -> None:
    base = {"device_id": "dr-jj-000001", "district": "jiaojiang", **changes}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(base, EdgeSection)


def test_a_sim_start_with_a_trailing_word_is_refused() -> None:
    # Surrounding whitespace is forgiven on purpose (settings text); anything else is not.
    assert parse_sim_start("-1h\n", 7200.0) == 3600.0
    with pytest.raises(ValueError, match="want 'now'"):
        parse_sim_start("-1h\nx", 7200.0)


def test_registry_ids_with_an_inner_newline_are_refused(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(
        'device_id,kind,district,lat,lon,expected_interval_s\n"drain\n001",drain,jiaojiang,'
        "28.6,121.4,60\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryError):
        load_registry(fleet)
