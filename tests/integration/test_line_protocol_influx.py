"""The line-protocol encoder against a real InfluxDB 1.6: what we escape is what comes back."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_core.errors import LineProtocolError
from telemetry_core.line_protocol import encode_point
from tests.helpers import InfluxDB
from tests.lineproto import parse_line

pytestmark = pytest.mark.integration

AWKWARD = ("a b", "c,d", "e=f", 'say "hi"', r"back\slash", "椒江 区", "two\nlines")


def test_awkward_names_and_values_survive_a_round_trip(influxdb: InfluxDB, influx_db: str) -> None:
    lines = []
    for i, text in enumerate(AWKWARD):
        tag = text if "\n" not in text else "no-newline-in-tags"
        fields: dict[str, float | int | bool | str] = {
            "note": text, "count": i, "ok": i % 2 == 0, "level m,x=y": i + 0.25,
        }  # fmt: skip
        lines.append(encode_point("odd meas,ure", {"label": tag, "k=ey": "v"}, fields, i + 1))
    influxdb.write_lp(influx_db, lines)
    body = influxdb.query('SELECT * FROM "odd meas,ure" GROUP BY *', influx_db, epoch="ns")
    series = body["results"][0]["series"]
    rows = {}
    for one in series:
        for values in one["values"]:
            row = dict(zip(one["columns"], values, strict=True))
            rows[row["time"]] = (one["tags"], row)
    assert len(rows) == len(AWKWARD)
    for i, text in enumerate(AWKWARD):
        tags, row = rows[i + 1]
        assert tags["label"] == (text if "\n" not in text else "no-newline-in-tags")
        assert tags["k=ey"] == "v"
        assert row["note"] == text
        assert row["count"] == i
        assert row["ok"] is (i % 2 == 0)
        assert row["level m,x=y"] == i + 0.25


def test_integer_and_float_fields_keep_their_types(influxdb: InfluxDB, influx_db: str) -> None:
    influxdb.write_lp(influx_db, [encode_point("m", {}, {"i": 2**53 + 1, "f": 1e-300}, 1)])
    body = influxdb.query('SELECT "i", "f" FROM "m"', influx_db, epoch="ns")
    (_, i, f) = body["results"][0]["series"][0]["values"][0]
    assert i == 2**53 + 1
    assert f == 1e-300


_names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
) | st.sampled_from(["time", "\x00", "\x00m", "\tm", "m\x00", "_measurement", "_field", "\\"])
_values = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(max_size=20)
)


_EXAMPLES = itertools.count()
_points = st.tuples(
    _names,
    st.dictionaries(_names, _names, max_size=3),
    st.dictionaries(_names, _values, min_size=1, max_size=4),
    st.integers(-(2**63) + 2, 2**63 - 2),
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(point=_points)
def test_what_the_strict_parser_reads_real_influxdb_takes(
    influxdb: InfluxDB,
    influx_db: str,
    point: tuple[str, dict[str, str], dict[str, float | int | bool | str], int],
) -> None:
    """``tests.lineproto`` is the oracle of the property and fuzz tests: hold it to the server."""
    try:
        line = encode_point(*point)
    except LineProtocolError:
        return
    parse_line(line)
    # A database per example: a field's type is fixed by its first write.
    db = f"{influx_db}_{next(_EXAMPLES)}"
    influxdb.create_database(db)
    try:
        influxdb.write_lp(db, [line])
    finally:
        influxdb.drop_database(db)
