"""One settings file for every command, and settings errors a person can act on.

``xiuhua ingest`` (pydantic) and ``xiuhua edge`` (msgspec) read the same file: each takes its
own sections, ignores the other commands', refuses unknown sections and unknown keys in its
own, and words every error the same way: the variable or ``file:line``, the dotted key, and a
plain message with "did you mean" for a near miss.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_ingest import IngestSettings
from edge_agent import load_edge_settings
from telemetry_core.config_rules import KNOWN_SECTIONS, parse_duration, toml_line
from telemetry_core.errors import ConfigError
from telemetry_core.settings import load_settings

SHARED = """\
[mqtt]
url = "mqtt://127.0.0.1:1883"

[influx]
url = "http://127.0.0.1:8086"
database = "city"

[registry]
path = "fleet.csv"

[log]
level = "info"

[ingest]
instance = "ingest-7"

[edge]
gateway_id = "gw-jj-01"
seed = 3

[alerting]
rules = "rules.yaml"

[dispatch]
sms = "off"
"""

Loader = Callable[[Path, dict[str, str]], object]


def _ingest(path: Path, env: dict[str, str]) -> object:
    return load_settings(IngestSettings, path, env)


def _edge(path: Path, env: dict[str, str]) -> object:
    return load_edge_settings(path, env)


LOADERS = pytest.mark.parametrize("load", [_ingest, _edge], ids=["ingest", "edge"])
JARGON = ("Extra inputs", "Input should", "Value error", "Expected `", "- at `$", "model_type")


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xiuhua.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(load: Loader, path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(path, env or {})
    message = str(info.value)
    for word in JARGON:
        assert word not in message, message
    return message


def test_every_command_reads_the_shared_file_and_ignores_the_others_sections(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, SHARED)
    ingest = load_settings(IngestSettings, path, {"XIUHUA_EDGE__SEED": "not ours"})
    assert (ingest.ingest.instance, ingest.influx.database) == ("ingest-7", "city")
    edge = load_edge_settings(path, {"XIUHUA_INGEST__BATCH_SIZE": "not ours"})
    assert (edge.edge.gateway_id, edge.edge.seed) == ("gw-jj-01", 3)
    assert {"alerting", "dispatch", "edge", "ingest"} <= KNOWN_SECTIONS


@LOADERS
def test_an_unknown_section_is_refused_with_its_line_and_the_nearest_name(
    tmp_path: Path, load: Loader
) -> None:
    text = SHARED + "\n[ingets]\nbatch_size = 1\n"
    line = text.splitlines().index("[ingets]") + 1
    message = _error(load, _file(tmp_path, text))
    assert message.startswith(
        f"{tmp_path / 'xiuhua.toml'}:{line}: ingets: unknown section; did you mean 'ingest'?"
    )


@pytest.mark.parametrize(
    ("load", "section", "typo", "meant"),
    [
        (_ingest, "ingest", "batch_sise", "batch_size"),
        (_ingest, "mqtt", "urll", "url"),
        (_edge, "edge", "max_inflite", "max_inflight"),
        (_edge, "mqtt", "urll", "url"),
    ],
)
def test_an_unknown_key_in_an_own_section_names_the_line_and_the_nearest_key(
    tmp_path: Path, load: Loader, section: str, typo: str, meant: str
) -> None:
    text = SHARED.replace(f"[{section}]\n", f"[{section}]\n{typo} = 1\n")
    path = _file(tmp_path, text)
    message = _error(load, path)
    line = toml_line(path, (section, typo))
    assert line is not None
    assert message == (
        f"{path}:{line}: {section}.{typo}: unknown key {typo!r}; did you mean {meant!r}?"
    )


@pytest.mark.parametrize(
    ("load", "variable", "value", "needle"),
    [
        (_ingest, "XIUHUA_INGEST__BATCH_SIZE", "lots", "ingest.batch_size: want a whole number"),
        (_edge, "XIUHUA_EDGE__SEED", "lots", "edge.seed: want a whole number, got 'lots'"),
        (_ingest, "XIUHUA_LOG__LEVEL", "loud", "log.level: want one of"),
        (_edge, "XIUHUA_LOG__LEVEL", "loud", "log.level: want one of"),
        (_edge, "XIUHUA_EDGE__KIND", "cow", "edge.kind: want one of 'drain', 'toilet', "),
        (_edge, "XIUHUA_EDGE__KIND", "cow", "got 'cow'"),
        (_ingest, "XIUHUA_MQTT__URL", "http://x", "want mqtt://host:port"),
        (_edge, "XIUHUA_MQTT__URL", "http://x", "want mqtt://host:port"),
    ],
)
def test_an_error_from_the_environment_names_the_variable_not_the_file(
    tmp_path: Path, load: Loader, variable: str, value: str, needle: str
) -> None:
    path = _file(tmp_path, SHARED)
    message = _error(load, path, {variable: value})
    assert message.startswith(f"{variable}: "), message
    assert needle in message
    assert str(path) not in message


@pytest.mark.parametrize(
    ("load", "edit", "needle"),
    [
        (_ingest, ('instance = "ingest-7"', "batch_size = 0"), "ingest.batch_size: want at least"),
        (_edge, ("seed = 3", "max_inflight = 0"), "edge.max_inflight: want at least 1"),
        (_ingest, ('level = "info"', 'level = "loud"'), "log.level: want one of"),
        (_edge, ('level = "info"', 'level = "loud"'), "log.level: want one of"),
    ],
)
def test_bounds_and_choices_read_the_same_in_every_command(
    tmp_path: Path, load: Loader, edit: tuple[str, str], needle: str
) -> None:
    path = _file(tmp_path, SHARED.replace(*edit))
    message = _error(load, path)
    line = SHARED.replace(*edit).splitlines().index(edit[1]) + 1
    assert message.startswith(f"{path}:{line}: {needle}"), message


def test_several_problems_are_listed_one_a_line(tmp_path: Path) -> None:
    text = SHARED.replace('instance = "ingest-7"', "batch_size = 0\ngroup = 'a b'")
    message = _error(_ingest, _file(tmp_path, text))
    assert message.startswith("2 problems in the settings:\n  ")
    assert "ingest.group: want text matching" in message


def test_a_wrong_secret_is_never_echoed(tmp_path: Path) -> None:
    message = _error(_ingest, _file(tmp_path, SHARED), {"XIUHUA_MQTT__PASSWORD": "changeme"})
    assert message == "XIUHUA_MQTT__PASSWORD: mqtt.password: is a placeholder; set a real secret"


def test_a_missing_own_section_says_to_add_it(tmp_path: Path) -> None:
    message = _error(_edge, _file(tmp_path, SHARED.replace("[edge]", "[alerting.x]")))
    assert "edge: required: add the [edge] section" in message


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("15m", 900.0), ("1.5h", 5400.0), (" 2d ", 172_800.0)]
)
def test_durations_take_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "needle"),
    [("90", "90s? 90m?"), ("0s", "positive"), ("-1h", "positive"), ("soon", "such as 90s")],
)
def test_a_duration_without_a_unit_or_positive_number_is_refused(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_duration(text)


@LOADERS
def test_a_variable_naming_an_unknown_section_is_refused(tmp_path: Path, load: Loader) -> None:
    message = _error(load, _file(tmp_path, SHARED), {"XIUHUA_INGETS__BATCH_SIZE": "10"})
    assert message.startswith("XIUHUA_INGETS__BATCH_SIZE: ingets: unknown section; did you mean")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("XIUHUA_EDGE__SIM_START", "2999-01-01T00:00:00Z",
         "XIUHUA_EDGE__SIM_START: edge.sim_start: '2999-01-01T00:00:00Z' is in the future"),
        ("XIUHUA_MQTT__PASSWORD", "changeme",
         "XIUHUA_MQTT__PASSWORD: mqtt.password: is a placeholder; set a real secret"),
        ("XIUHUA_EDGE__DEFAULTS__MEDIAN_WINDOW", "4",
         "XIUHUA_EDGE__DEFAULTS__MEDIAN_WINDOW: edge.defaults.median_window: must be odd, got 4"),
    ],
)  # fmt: skip
def test_a_section_check_is_placed_at_its_key_and_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    message = _error(_edge, _file(tmp_path, SHARED), {variable: value})
    assert message.startswith(expected), message


def test_a_section_check_names_the_file_and_the_variables_inside_the_section(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, SHARED)
    message = _error(_edge, path, {"XIUHUA_EDGE__DEVICE_ID": "dr-jj-000001"})
    line = SHARED.splitlines().index("[edge]") + 1
    assert message.startswith(f"{path}:{line} (with XIUHUA_EDGE__DEVICE_ID): edge: set exactly one")
