"""InfluxDB line protocol: one encoder for the whole project, pinned by golden tests.

Escaping follows the InfluxDB reference: in measurements commas and spaces are escaped; in tag
keys, tag values and field keys commas, equals signs and spaces; in string field values double
quotes and backslashes. A backslash elsewhere is literal to InfluxDB, except before a character it
escapes, so a name ending in a backslash, or with a backslash before a character we escape, is
refused (InfluxDB's scanner would read our escape as escaping that backslash). So are NUL in a
name and a name starting with a tab (InfluxDB skips both as whitespace), and a tag or field key
``time`` (InfluxDB refuses it, or drops the field). Newlines
end a line outside string fields and cannot be escaped there, so they are refused in names, tags
and keys; inside a quoted string field they are data. NaN and infinities have no spelling in line
protocol and are refused. Tags are written sorted by key, as
InfluxDB recommends for write performance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from telemetry_core.errors import LineProtocolError

FieldValue = float | int | bool | str

_MEASUREMENT: Final = str.maketrans({",": r"\,", " ": r"\ "})
_KEY: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_NEWLINES: Final = ("\n", "\r")


def _refuse_unwritable(text: str, where: str, escaped: str) -> None:
    if any(nl in text for nl in _NEWLINES):
        raise LineProtocolError(f"{where} {text!r} contains a newline")
    # InfluxDB skips NUL and tabs as whitespace where a name begins: the name would change.
    if "\x00" in text or text.startswith("\t"):
        raise LineProtocolError(f"{where} {text!r} contains NUL or starts with a tab")
    if text.endswith("\\"):
        raise LineProtocolError(f"{where} {text!r} ends with a backslash")
    # InfluxDB's scanner skips the character after any backslash: a backslash before a
    # character we escape would swallow our escape and leave the separator bare.
    if "\\" in text and any(f"\\{c}" in text for c in escaped):
        raise LineProtocolError(f"{where} {text!r} has a backslash before one of {escaped!r}")


def escape_measurement(name: str) -> str:
    """Escape a measurement name."""
    if not name:
        raise LineProtocolError("empty measurement name")
    _refuse_unwritable(name, "measurement", ", ")
    return name.translate(_MEASUREMENT)


def escape_key(key: str, where: str = "key") -> str:
    """Escape a tag key, tag value or field key."""
    if not key:
        raise LineProtocolError(f"empty {where}")
    if key == "time" and where != "tag value":
        # InfluxDB refuses a tag or field named time (or silently drops the field).
        raise LineProtocolError(f"{where} 'time' is reserved by InfluxDB")
    _refuse_unwritable(key, where, ",= ")
    return key.translate(_KEY)


def format_field_value(key: str, value: FieldValue) -> str:
    """A field value as line protocol: floats plain, ints with ``i``, bools, quoted strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field {key!r} is {value!r}: NaN and inf cannot be written")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise LineProtocolError(f"field {key!r} has unsupported type {type(value).__name__}")


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ns: int | None = None,
) -> str:
    """One point as a line of line protocol (without the trailing newline)."""
    if not fields:
        raise LineProtocolError(f"point in {measurement!r} has no fields")
    head = escape_measurement(measurement)
    tag_part = "".join(
        f",{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}"
        for k, v in sorted(tags.items())
        if v != ""
    )
    field_part = ",".join(
        f"{escape_key(k, 'field key')}={format_field_value(k, v)}" for k, v in fields.items()
    )
    line = f"{head}{tag_part} {field_part}"
    return line if time_ns is None else f"{line} {time_ns}"


def ms_to_ns(ts_ms: int) -> int:
    """Milliseconds since the epoch to the nanoseconds line protocol expects."""
    return ts_ms * 1_000_000
