"""A strict parser of InfluxDB line protocol, written from the reference, for property tests.

It reads one line as InfluxDB 1.x does and refuses what InfluxDB refuses, or silently changes:
unescaped separators, empty keys, integers outside int64 (``123i``), timestamps outside int64,
non-finite floats, a duplicate field key, a tag or field key ``time``, and a NUL, tab or space
where InfluxDB skips whitespace (the start of the line, the start of the fields). It is
independent of ``telemetry_core.line_protocol`` on purpose: a property test that parses the
encoder's output with the encoder's own rules would prove nothing. It is held to the real server
by ``tests/integration/test_line_protocol_influx.py``.

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
    if line[:1] in ("\x00", "\t", " "):
        raise LineError("InfluxDB skips leading NUL, tab and space: the measurement would change")
    key_part, pos = _until(line, 0, " ", in_key=True)
    if "\n" in key_part:
        raise LineError("newline in the series key")
    measurement, tags = _series(key_part)
    if line[pos + 1 : pos + 2] in ("\x00", "\t", " "):
        raise LineError("InfluxDB skips NUL, tab and space before the fields: the key would change")
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
    for match in _token(stop).finditer(text, start):
        if match.group() == stop:
            return text[start : match.start()], match.start()
    if in_key:
        raise LineError(f"no unescaped {stop!r} after {text[start : start + 40]!r}")
    return text[start:], len(text)


def _split(text: str, sep: str) -> list[str]:
    parts, start = [], 0
    for match in _token(sep).finditer(text):
        if match.group() == sep:
            parts.append(text[start : match.start()])
            start = match.end()
    parts.append(text[start:])
    return parts


def _token(chars: str) -> re.Pattern[str]:
    """An escape (backslash and any character) or one of ``chars``: the characters that matter."""
    return re.compile(r"\\.|[" + re.escape(chars) + "]", re.DOTALL)


def _unescape(text: str, chars: str) -> str:
    return re.sub(r"\\([" + re.escape(chars) + "])", r"\1", text)


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
        if key == "time":
            raise LineError("tag key 'time' is refused by InfluxDB")
        tags[key] = value
    return measurement, tags


_FIELD_TOKEN: Final = re.compile(r'\\.|["=, \n]', re.DOTALL)


def _field_scan(line: str, start: int) -> tuple[list[str], int]:
    """The fields, split at commas, up to the first space outside a quoted value.

    As InfluxDB's scanner: a double quote is significant only in a value (after the field's
    ``=``), never in a key; a newline ends the line unless inside a quoted value.
    """
    parts: list[str] = []
    begin, end, quoted, equals, commas = start, len(line), False, 0, 0
    for match in _FIELD_TOKEN.finditer(line, start):
        c = match.group()
        if len(c) == 2:  # an escape
            continue
        if c == '"' and equals > commas:
            quoted = not quoted
        elif quoted:
            continue
        elif c == "=":
            equals += 1
        elif c == ",":
            commas += 1
            parts.append(line[begin : match.start()])
            begin = match.end()
        elif c == "\n":
            raise LineError("newline outside a string field")
        elif c == " ":
            end = match.start()
            break
    if quoted:
        raise LineError("unterminated string field")
    parts.append(line[begin:end])
    return parts, end


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
        if key == "time":
            raise LineError("field key 'time' is refused (or dropped) by InfluxDB")
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
