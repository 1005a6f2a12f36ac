"""``decode(..., Telemetry)``'s fast path accepts exactly what the strict decoder accepts.

The fast path decodes with the patterned strings (device id, boot id, metric names) unchecked
and then checks them against strings already seen to be valid; on any doubt it hands the
payload to the strict decoder. Every payload must therefore give the strict decoder's message,
or its very refusal: the same exception type and text.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_core import schema
from telemetry_core.schema import Telemetry

# Strings near the patterns' edges: valid ids and names, and the ways they go wrong.
_TEXT = st.one_of(
    st.sampled_from(["dr-jj-000001", "abc", "a1", "a-", "-ab", "Ab-1", "ok\n", "x" * 64, "x" * 65,
                     "level_m", "fill_ratio", "9lives", "Level", "a" * 65, "", "b1", "b1\n",
                     "boot_1-A", "é", "a b"]),
    st.text(alphabet="abcxyz019-_A\n é", max_size=70),
)  # fmt: skip
_NUMBER = st.one_of(
    st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 2**53, 2**53 - 1, schema.MAX_TS_MS, schema.MAX_TS_MS + 1]),
)  # fmt: skip
_ANY = st.one_of(_TEXT, _NUMBER, st.none(), st.booleans(), st.lists(_NUMBER, max_size=2))


_DEVICE = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,10}[a-z0-9]\Z")
_BOOT = st.from_regex(r"\A[0-9A-Za-z_-]{1,12}\Z")
_NAME = st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z")


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reading, then none, one or a few of its parts made hostile."""
    doc: dict[str, Any] = {
        "v": 1,
        "device_id": draw(_DEVICE),
        "ts": draw(st.integers(0, schema.MAX_TS_MS)),
        "seq": draw(st.integers(0, 2**53 - 1)),
        "boot_id": draw(_BOOT),
        "readings": draw(st.dictionaries(_NAME, st.floats(-1e9, 1e9), min_size=1, max_size=8)),
    }
    if draw(st.booleans()):
        doc["quality"] = draw(st.dictionaries(_NAME, st.sampled_from(["suspect", "x" * 600])))
    if draw(st.booleans()):
        doc["historical"] = draw(st.booleans())
    hostile = {
        "v": _ANY, "device_id": _TEXT, "ts": _ANY, "seq": _ANY, "boot_id": _TEXT,
        "readings": st.one_of(
            st.dictionaries(_TEXT, st.one_of(_NUMBER, _ANY), max_size=4),
            st.dictionaries(_NAME, _NUMBER, min_size=60, max_size=66), _ANY,
        ),
        "quality": st.one_of(st.none(), st.dictionaries(_TEXT, _ANY, max_size=2)),
        "historical": _ANY,
    }  # fmt: skip
    for key in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=2, unique=True)):
        doc[key] = draw(hostile[key])
    if draw(st.integers(0, 9)) == 0:
        doc.pop(draw(st.sampled_from(sorted(doc))))  # a field missing
    if draw(st.integers(0, 4)) == 0 and isinstance(doc.get("readings"), dict):
        doc["readings"][draw(_TEXT)] = 1.0  # one more name, maybe a bad one
    return doc


def _outcome(decode: Any, payload: bytes) -> tuple[str, Any]:
    try:
        return "ok", decode(payload)
    except Exception as exc:  # noqa: BLE001 - the refusal is what is compared
        return type(exc).__name__, str(exc)


@settings(max_examples=800, deadline=None)
@given(documents())
def test_the_fast_path_gives_the_strict_decoders_result(doc: dict[str, Any]) -> None:
    payload = json.dumps(doc).encode()
    strict = _outcome(schema._DECODERS[Telemetry].decode, payload)
    # Twice: once with the strings new to the fast path's memory, once with them known.
    assert _outcome(schema._decode_telemetry, payload) == strict
    assert _outcome(schema._decode_telemetry, payload) == strict


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_the_strict_decoders_result(payload: bytes) -> None:
    strict = _outcome(schema._DECODERS[Telemetry].decode, payload)
    assert _outcome(schema._decode_telemetry, payload) == strict


def test_a_full_memory_is_emptied_not_grown() -> None:
    known = schema._Known(schema.MetricName)
    assert known.all_valid(f"m{k}" for k in range(schema._KNOWN_CAP + 10))
    assert len(known._seen) <= schema._KNOWN_CAP
    assert not known.all_valid(["Bad"])
    assert "Bad" not in known._seen
