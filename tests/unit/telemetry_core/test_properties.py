"""Properties of the contract's decode/encode and of the line-protocol encoder (hypothesis)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_core.errors import LineProtocolError, RejectedMessage
from telemetry_core.line_protocol import FieldValue, encode_point
from telemetry_core.schema import Command, CommandAck, Event, Status, Telemetry, decode, encode
from tests import strategies as s
from tests.lineproto import parse_line

KINDS: list[type[Any]] = [Telemetry, Event, Status, Command, CommandAck]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(payload=st.binary(max_size=2_000), kind=st.sampled_from(KINDS))
def test_decode_of_any_bytes_refuses_only_with_rejected_message(
    payload: bytes, kind: type[Any]
) -> None:
    with contextlib.suppress(RejectedMessage):
        decode(payload, kind)


@FAST
@given(value=s.json_values(40), kind=st.sampled_from(KINDS))
def test_decode_of_any_json_refuses_only_with_rejected_message(value: Any, kind: type[Any]) -> None:
    try:
        payload = msgspec.json.encode(value)
    except (OverflowError, TypeError):
        return  # not expressible as JSON (a float key, ...); nothing to send
    with contextlib.suppress(RejectedMessage):
        decode(payload, kind)


@FAST
@given(
    shape=st.sampled_from(["telemetry", "event", "status"]).flatmap(
        lambda k: st.tuples(st.just(k), s.contract_like(k, "drain-001", 1_764_000_000_000))
    )
)
def test_decode_of_contract_shaped_hostile_objects(shape: tuple[str, dict[str, Any]]) -> None:
    kind: type[Any] = {"telemetry": Telemetry, "event": Event, "status": Status}[shape[0]]
    payload = msgspec.json.encode(shape[1])
    try:
        message = decode(payload, kind)
    except RejectedMessage:
        return
    # Accepted: then it round-trips, and every integer is inside its bound.
    assert decode(encode(message), kind) == message


@FAST
@given(message=st.one_of(s.telemetry(), s.events(), s.statuses(), s.commands(), s.acks()))
def test_encode_then_decode_round_trips(
    message: Telemetry | Event | Status | Command | CommandAck,
) -> None:
    kind: type[Any] = type(message)
    assert decode(encode(message), kind) == message


keys = st.text(min_size=1, max_size=20)
field_values: st.SearchStrategy[FieldValue] = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(max_size=40)
)


@FAST
@given(
    measurement=keys,
    tags=st.dictionaries(keys, st.text(max_size=20), max_size=4),
    fields=st.dictionaries(keys, field_values, min_size=1, max_size=5),
    time_ns=st.none() | st.integers(-(2**63) + 2, 2**63 - 2),
)
def test_encode_point_refuses_or_writes_a_line_that_parses_back(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], time_ns: int | None
) -> None:
    try:
        line = encode_point(measurement, tags, fields, time_ns)
    except LineProtocolError:
        return
    point = parse_line(line)
    assert point.measurement == measurement
    assert point.tags == {k: v for k, v in tags.items() if v != ""}
    assert point.fields == fields
    assert point.time_ns == time_ns
