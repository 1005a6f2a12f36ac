"""A strict parser of InfluxDB line protocol, written from the reference, for property tests.

It reads one line as InfluxDB 1.8 does and refuses what InfluxDB refuses that matters here:
unescaped separators, empty keys, integers outside int64 (``123i``), timestamps outside int64,
non-finite floats, a duplicate field key. It is independent of ``telemetry_core.line_protocol``
on purpose: a property test that parses the encoder's output with the encoder's own rules
would prove nothing.

Reference: https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# InfluxDB 1.x keeps the two extreme int64 values for itself (models.MinNanoTime/MaxNanoTime).
TIME_MIN: Final = INT64_MIN + 2
TIME_MAX: Final = INT64_MAX - 1
_FLOAT: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_INT: Final = re.compile(r"[+-]?\d+i\Z")
_BOOLS: Final = {
    **dict.fromkeys(("t", "T", "true", "True", "TRUE"), True),
    **dict.fromkeys(("f", "F", "false", "False", "FALSE"), False),
}

FieldValue = float | int | bool | str


class LineError(ValueError):
    """The line is not valid line protocol; says where."""


@dataclass(frozen=True, slots=True)
class Point:
    """One parsed line."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int | None


def parse_line(line: str) -> Point:
    """Parse one line (no trailing newline); ``LineError`` names what is wrong."""
    key_part, pos = _until(line, 0, " ", in_key=True)
    if "\n" in key_part:
        raise LineError("newline in the series key")
    measurement, tags = _series(key_part)
    field_parts, pos = _field_scan(line, pos + 1)
    fields = _fields(field_parts)
    rest = line[pos:]
    time_ns = None
    if rest:
        if not rest.startswith(" ") or not re.fullmatch(r"-?\d+", rest[1:]):
            raise LineError(f"bad timestamp {rest!r}")
        time_ns = int(rest[1:])
        if not TIME_MIN <= time_ns <= TIME_MAX:
            raise LineError(f"timestamp {time_ns} outside int64")
    return Point(measurement, tags, fields, time_ns)


def _until(text: str, start: int, stop: str, *, in_key: bool) -> tuple[str, int]:
    """Text from ``start`` up to the first unescaped ``stop``; (text, index of ``stop``)."""
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            i += 2
            continue
        if c == stop:
            return text[start:i], i
        i += 1
    if in_key:
        raise LineError(f"no unescaped {stop!r} after {text[start : start + 40]!r}")
    return text[start:], len(text)


def _split(text: str, sep: str) -> list[str]:
    parts, i, start = [], 0, 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 2
            continue
        if text[i] == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str, chars: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in chars:
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _series(key_part: str) -> tuple[str, dict[str, str]]:
    parts = _split(key_part, ",")
    measurement = _unescape(parts[0], ", ")
    if not measurement:
        raise LineError("empty measurement")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        pair = _split(part, "=")
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise LineError(f"bad tag {part!r}")
        key, value = (_unescape(p, ",= ") for p in pair)
        tags[key] = value
    return measurement, tags


def _field_scan(line: str, start: int) -> tuple[list[str], int]:
    """The fields, split at commas, up to the first space outside a quoted value.

    As InfluxDB's scanner: a double quote is significant only in a value (after the field's
    ``=``), never in a key; a newline ends the line unless inside a quoted value.
    """
    parts: list[str] = []
    i, begin, quoted, equals, commas = start, start, False, 0, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            i += 2
            continue
        if c == '"' and equals > commas:
            quoted = not quoted
        elif not quoted and c == "=":
            equals += 1
        elif not quoted and c == ",":
            commas += 1
            parts.append(line[begin:i])
            begin = i + 1
        elif not quoted and c in " \n":
            if c == "\n":
                raise LineError("newline outside a string field")
            break
        i += 1
    if quoted:
        raise LineError("unterminated string field")
    parts.append(line[begin:i])
    return parts, i


def _fields(parts: list[str]) -> dict[str, FieldValue]:
    if parts == [""]:
        raise LineError("no fields")
    fields: dict[str, FieldValue] = {}
    for part in parts:
        key_raw, _, value_raw = _partition_unescaped(part, "=")
        key = _unescape(key_raw, ",= ")
        if not key or not value_raw:
            raise LineError(f"bad field {part!r}")
        if key in fields:
            raise LineError(f"duplicate field {key!r}")
        fields[key] = _value(value_raw)
    return fields


def _partition_unescaped(text: str, sep: str) -> tuple[str, str, str]:
    head, at = _until(text, 0, sep, in_key=False)
    return head, sep, text[at + 1 :]


def _value(raw: str) -> FieldValue:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"') or _ends_escaped(raw[1:-1]):
            raise LineError(f"bad string {raw[:40]!r}")
        return _unescape(raw[1:-1], '"\\')
    if raw in _BOOLS:
        return _BOOLS[raw]
    if _INT.match(raw):
        number = int(raw[:-1])
        if not INT64_MIN <= number <= INT64_MAX:
            raise LineError(f"integer {raw} outside int64")
        return number
    if _FLOAT.match(raw):
        value = float(raw)
        if not math.isfinite(value):
            raise LineError(f"float {raw} out of range")
        return value
    raise LineError(f"bad field value {raw[:40]!r}")


def _ends_escaped(body: str) -> bool:
    backslashes = len(body) - len(body.rstrip("\\"))
    return backslashes % 2 == 1
