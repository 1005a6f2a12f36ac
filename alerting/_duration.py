"""Durations in rules files: ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` or a number of seconds."""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import BeforeValidator

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S: Final = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def parse_duration_s(value: object) -> float:
    """Seconds in a duration; ``ValueError`` naming the text otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"want a duration such as 5m, got {value!r}")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"want a duration such as 90s, 5m or 2h, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not seconds >= 0:
        raise ValueError(f"a duration must be >= 0, got {value!r}")
    return seconds


DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
"""A pydantic field holding a duration in seconds, written as ``5m`` in YAML."""
