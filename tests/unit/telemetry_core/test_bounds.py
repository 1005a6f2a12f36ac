"""Poison messages found by the hostile stream: every integer bounded, every pattern whole-string,
deep nesting refused with a reason (not a ``RecursionError``)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from telemetry_core.errors import ContractError, RejectedMessage, RejectReason
from telemetry_core.schema import (
    MAX_TS_MS,
    SAFE_INT_MAX,
    Command,
    CommandAck,
    Event,
    Status,
    Telemetry,
    decode,
)
from telemetry_core.topics import check_device_id, check_district, parse_topic

TS = 1_764_000_000_000
INT64_MAX = 2**63 - 1


def telemetry(**kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "device_id": "drain-001", "ts": TS, "seq": 1,
                               "boot_id": "b1", "readings": {"level_m": 1.0}}  # fmt: skip
    body.update(kw)
    return msgspec.json.encode(body)


def event(**kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "device_id": "drain-001", "ts": TS, "seq": 1,
                               "boot_id": "b1", "type": "threshold_crossed"}  # fmt: skip
    body.update(kw)
    return msgspec.json.encode(body)


def status(**kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "device_id": "drain-001", "ts": TS, "boot_id": "b1",
                               "state": "online"}  # fmt: skip
    body.update(kw)
    return msgspec.json.encode(body)


def command(**kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "cmd_id": "c-1", "ts": TS, "op": "restart"}
    body.update(kw)
    return msgspec.json.encode(body)


def ack(**kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "cmd_id": "c-1", "device_id": "drain-001", "ts": TS,
                               "ok": True}  # fmt: skip
    body.update(kw)
    return msgspec.json.encode(body)


def reason_of(payload: bytes, kind: type[Any]) -> RejectReason:
    with pytest.raises(RejectedMessage) as info:
        decode(payload, kind)
    return info.value.reason


def test_the_bounds_fit_influxdb_int64_and_double_precision() -> None:
    # An event's time is ts in ns plus seq mod 1e6 (cloud_ingest._events.event_time_ns).
    assert MAX_TS_MS * 1_000_000 + 999_999 <= INT64_MAX - 1
    assert float(SAFE_INT_MAX) == SAFE_INT_MAX
    # Any difference of two seqs, and their sum with another, stays inside int64.
    assert 2 * SAFE_INT_MAX < INT64_MAX


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (telemetry(seq=SAFE_INT_MAX + 1), Telemetry),
        (telemetry(seq=2**63), Telemetry),
        (telemetry(seq=-1), Telemetry),
        (telemetry(ts=MAX_TS_MS + 1), Telemetry),
        (telemetry(ts=10**30), Telemetry),
        (telemetry(v=2**64), Telemetry),
        (telemetry(v=-1), Telemetry),
        (event(seq=2**70), Event),
        (event(data={"n": SAFE_INT_MAX + 1}), Event),
        (event(data={"n": -SAFE_INT_MAX - 1}), Event),
        (event(data={"n": 10**400}), Event),
        (status(config_version=2**63), Status),
        (status(config_version=SAFE_INT_MAX + 1), Status),
        (status(config_version=-1), Status),
        (command(ts=10**20), Command),
        (ack(config_version=10**20), CommandAck),
    ],
)
def test_integers_outside_their_bound_are_refused(payload: bytes, kind: type[Any]) -> None:
    assert reason_of(payload, kind) is RejectReason.SCHEMA


def test_integers_at_their_bound_are_accepted() -> None:
    assert decode(telemetry(seq=SAFE_INT_MAX, ts=MAX_TS_MS), Telemetry).seq == SAFE_INT_MAX
    data = {"hi": SAFE_INT_MAX, "lo": -SAFE_INT_MAX}
    assert decode(event(data=data), Event).data == data
    assert decode(status(config_version=SAFE_INT_MAX), Status).config_version == SAFE_INT_MAX


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (telemetry(device_id="drain-001\n"), Telemetry),
        (telemetry(boot_id="b1\n"), Telemetry),
        (telemetry(readings={"level_m\n": 1.0}), Telemetry),
        (telemetry(quality={"level_m\n": "stuck"}), Telemetry),
        (event(type="threshold_crossed\n"), Event),
        (event(metric="level_m\n"), Event),
        (event(data={"n\n": 1}), Event),
        (status(device_id="drain-001\n"), Status),
        (command(cmd_id="c-1\n"), Command),
        (ack(cmd_id="c-1\n"), CommandAck),
        (ack(device_id="drain-001\n"), CommandAck),
    ],
)
def test_a_trailing_newline_breaks_every_pattern(payload: bytes, kind: type[Any]) -> None:
    assert reason_of(payload, kind) is RejectReason.SCHEMA


@pytest.mark.parametrize(
    "topic",
    [
        "xh/v1/jiaojiang\n/drain/drain-001/telemetry",
        "xh/v1/jiaojiang/drain/drain-001\n/telemetry",
        "xh/v1/jiaojiang/drain/drain-001/telemetry\n",
    ],
)
def test_topics_with_a_trailing_newline_are_bad_topics(topic: str) -> None:
    with pytest.raises(RejectedMessage) as info:
        parse_topic(topic)
    assert info.value.reason is RejectReason.BAD_TOPIC


def test_ids_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(ContractError):
        check_device_id("drain-001\n")
    with pytest.raises(ContractError):
        check_district("jiaojiang\n")


@pytest.mark.parametrize("depth", [1_100, 8_000])
@pytest.mark.parametrize("kind", [Telemetry, Event, Status, Command, CommandAck])
def test_deep_nesting_is_malformed_json_not_a_recursion_error(depth: int, kind: type[Any]) -> None:
    # Inside an unknown field (ignored by the contract), so the parser must descend into it.
    payload = b'{"v":1,"x":' + b"[" * depth + b"]" * depth + b"}"
    assert reason_of(payload, kind) is RejectReason.MALFORMED_JSON


def test_huge_floats_are_finite_or_refused_as_non_finite() -> None:
    assert decode(telemetry(readings={"level_m": 1.7976931348623157e308}), Telemetry)
    body = telemetry().replace(b"1.0}", b"1" + b"0" * 400 + b"}")
    assert reason_of(body, Telemetry) is RejectReason.NON_FINITE
