"""Golden strings for the line-protocol encoder (InfluxDB's escaping rules)."""

from __future__ import annotations

import math

import pytest

from telemetry_core.errors import LineProtocolError
from telemetry_core.line_protocol import encode_point, ms_to_ns


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "time_ns", "golden"),
    [
        (
            "drain",
            {"device_id": "dr-jj-1", "district": "jiaojiang"},
            {"level_m": 1.25},
            1,
            ("drain,device_id=dr-jj-1,district=jiaojiang level_m=1.25 1"),
        ),
        (
            "drain",
            {"district": "jj", "device_id": "d1"},
            {"a": 1.0},
            None,
            ("drain,device_id=d1,district=jj a=1.0"),
        ),
        ("my meas,x", {}, {"v": 1.0}, None, r"my\ meas\,x v=1.0"),
        ("m", {"k ey": "v,a=l ue"}, {"f": 0.5}, None, r"m,k\ ey=v\,a\=l\ ue f=0.5"),
        ("m", {}, {"f=k,e y": 2.0}, None, r"m f\=k\,e\ y=2.0"),
        ("m", {}, {"i": 42, "neg": -7}, None, "m i=42i,neg=-7i"),
        ("m", {}, {"t": True, "f": False}, None, "m t=true,f=false"),
        ("m", {}, {"s": 'say "hi" \\ bye'}, None, r'm s="say \"hi\" \\ bye"'),
        ("m", {}, {"s": "two\nlines"}, None, 'm s="two\nlines"'),
        ("m", {}, {"big": 1e20, "small": 1.5e-7}, 5, "m big=1e+20,small=1.5e-07 5"),
        ("m", {"empty": "", "k": "v"}, {"f": 1.0}, None, "m,k=v f=1.0"),
        ("m", {"path": r"a\b"}, {"f": 1.0}, None, r"m,path=a\b f=1.0"),
        ("厕所", {"区": "椒江"}, {"氨": 0.3}, None, "厕所,区=椒江 氨=0.3"),
    ],
)
def test_encodes_golden_lines(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, float | int | bool | str],
    time_ns: int | None,
    golden: str,
) -> None:
    assert encode_point(measurement, tags, fields, time_ns) == golden


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_refuses_non_finite_floats(bad: float) -> None:
    with pytest.raises(LineProtocolError, match="NaN and inf"):
        encode_point("m", {}, {"f": bad})


@pytest.mark.parametrize(
    ("measurement", "tags", "fields"),
    [
        ("m\n", {}, {"f": 1.0}),
        ("m", {"k": "line\nbreak"}, {"f": 1.0}),
        ("m", {"k\r": "v"}, {"f": 1.0}),
        ("m", {}, {"f\n": 1.0}),
        ("m", {"k": "trailing\\"}, {"f": 1.0}),
        ("", {}, {"f": 1.0}),
        ("m", {}, {}),
        ("m", {}, {"": 1.0}),
    ],
)
def test_refuses_what_cannot_be_written(
    measurement: str, tags: dict[str, str], fields: dict[str, float]
) -> None:
    with pytest.raises(LineProtocolError):
        encode_point(measurement, tags, fields)


def test_refuses_unsupported_field_types() -> None:
    with pytest.raises(LineProtocolError, match="unsupported type"):
        encode_point("m", {}, {"f": None})  # type: ignore[dict-item]


def test_ms_to_ns() -> None:
    assert ms_to_ns(1_764_000_000_123) == 1_764_000_000_123_000_000


@pytest.mark.parametrize(
    ("measurement", "tags", "fields"),
    [
        ("\\,", {}, {"x": 0.0}),  # found by the property test: would read as `\\` then a bare ','
        ("a\\ b", {}, {"x": 0.0}),
        ("m", {"k\\=": "v"}, {"x": 0.0}),
        ("m", {"k": "v\\,w"}, {"x": 0.0}),
        ("m", {}, {"\\,": 0.0}),  # found by the property test: an empty field key for InfluxDB
        ("m", {}, {"a\\ b": 0.0}),
    ],
)
def test_refuses_a_backslash_before_an_escaped_character(
    measurement: str, tags: dict[str, str], fields: dict[str, float]
) -> None:
    with pytest.raises(LineProtocolError, match="backslash before"):
        encode_point(measurement, tags, fields)


def test_a_backslash_before_an_ordinary_character_is_literal() -> None:
    assert encode_point("a\\b", {"k": "c\\d"}, {"f\\g": 1.0}) == "a\\b,k=c\\d f\\g=1.0"


@pytest.mark.parametrize(
    ("measurement", "tags", "fields"),
    [
        ("\x00m", {}, {"x": 0.0}),  # InfluxDB stores it as "m": it skips NUL as whitespace
        ("\tm", {}, {"x": 0.0}),
        ("m", {"k": "a\x00b"}, {"x": 0.0}),
        ("m", {}, {"\tx": 0.0}),
        ("m", {"time": "v"}, {"x": 0.0}),  # refused by InfluxDB
        ("m", {}, {"time": 0.0}),  # refused, or dropped beside another field
    ],
)
def test_refuses_names_influxdb_would_change_or_refuse(
    measurement: str, tags: dict[str, str], fields: dict[str, float]
) -> None:
    with pytest.raises(LineProtocolError):
        encode_point(measurement, tags, fields)
