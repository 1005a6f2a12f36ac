"""The line-protocol encoder against a real InfluxDB 1.6: what we escape is what comes back."""

from __future__ import annotations

import pytest

from telemetry_core.line_protocol import encode_point
from tests.helpers import InfluxDB

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
