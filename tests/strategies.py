"""Hypothesis strategies for the wire contract (valid messages at their bounds, hostile JSON),
and the contract as an oracle for ``tests.hostile`` (``contract_refuses``).

Shared by the tests of every consumer (ingester today; rule engine, dispatcher next).
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from telemetry_core.errors import RejectedMessage
from telemetry_core.kinds import DeviceKind, kind_spec
from telemetry_core.schema import (
    MAX_TS_MS,
    SAFE_INT_MAX,
    Command,
    CommandAck,
    Event,
    Severity,
    Status,
    Telemetry,
    decode,
)
from telemetry_core.topics import Channel, parse_topic

ID_CHARS = string.ascii_letters + string.digits + "_-"
METRIC_CHARS = string.ascii_lowercase + string.digits + "_"
EXTREME_INTS = st.sampled_from(
    [0, 1, -1, SAFE_INT_MAX, SAFE_INT_MAX + 1, -SAFE_INT_MAX, -SAFE_INT_MAX - 1, MAX_TS_MS,
     MAX_TS_MS + 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**400]
)  # fmt: skip
ANY_INT = st.one_of(st.integers(), EXTREME_INTS)
ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -0.0]
)
HOSTILE_TEXT = st.text(max_size=80) | st.sampled_from(
    ["", "\n", "a\n", "drain-001\n", "x" * 600, "\x00", "\\", '"', "a,b=c d", "设备", "\u2028"]
)

device_ids = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,20}[a-z0-9]\Z")
boot_ids = st.text(ID_CHARS, min_size=1, max_size=64)
metric_names = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
timestamps = st.integers(0, MAX_TS_MS)
seqs = st.integers(0, SAFE_INT_MAX)
short_text = st.text(max_size=512)
finite = st.floats(allow_nan=False, allow_infinity=False)


def telemetry(device_id: st.SearchStrategy[str] = device_ids) -> st.SearchStrategy[Telemetry]:
    """Any valid telemetry (any metric names: valid for the contract, maybe not for a kind)."""
    return st.builds(
        Telemetry, v=st.just(1), device_id=device_id, ts=timestamps, seq=seqs, boot_id=boot_ids,
        readings=st.dictionaries(metric_names, finite, min_size=1, max_size=8),
        quality=st.none() | st.dictionaries(metric_names, short_text, max_size=4),
        historical=st.booleans(),
    )  # fmt: skip


def events() -> st.SearchStrategy[Event]:
    """Any valid event."""
    data_value = st.integers(-SAFE_INT_MAX, SAFE_INT_MAX) | finite | short_text | st.booleans()
    return st.builds(
        Event, v=st.just(1), device_id=device_ids, ts=timestamps, seq=seqs, boot_id=boot_ids,
        type=metric_names, severity=st.sampled_from(Severity), metric=st.none() | metric_names,
        value=st.none() | finite, message=short_text,
        data=st.dictionaries(metric_names, data_value, max_size=6), historical=st.booleans(),
    )  # fmt: skip


def statuses() -> st.SearchStrategy[Status]:
    """Any valid status."""
    return st.builds(
        Status, v=st.just(1), device_id=device_ids, ts=timestamps, boot_id=boot_ids,
        state=st.sampled_from(["online", "offline"]), firmware=short_text,
        config_version=st.integers(0, SAFE_INT_MAX), reason=short_text,
    )  # fmt: skip


def commands() -> st.SearchStrategy[Command]:
    """Any valid command (config values: JSON-able data)."""
    return st.builds(
        Command, v=st.just(1), cmd_id=boot_ids, ts=timestamps,
        op=st.sampled_from(["set_config", "restart", "publish_status"]),
        config=st.dictionaries(st.text(max_size=10), json_values(), max_size=4),
    )  # fmt: skip


def acks() -> st.SearchStrategy[CommandAck]:
    """Any valid command acknowledgement."""
    return st.builds(
        CommandAck, v=st.just(1), cmd_id=boot_ids, device_id=device_ids, ts=timestamps,
        ok=st.booleans(), reason=short_text, config_version=st.integers(0, SAFE_INT_MAX),
    )  # fmt: skip


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON value, hostile leaves included (extreme ints, huge floats, odd text)."""
    leaves = st.none() | st.booleans() | ANY_INT | ANY_FLOAT | HOSTILE_TEXT
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def contract_like(kind_name: str, device_id: str, now_ms: int) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object shaped like a message of ``kind_name`` whose values may be anything: mostly
    right, each field now and then wrong (type, bound, pattern), and unknown fields."""
    spec = kind_spec(DeviceKind.DRAIN)
    metric = st.sampled_from(sorted(spec.metrics)) | metric_names | HOSTILE_TEXT

    def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, good, good, json_values(4))

    base: dict[str, st.SearchStrategy[Any]] = {
        "v": field(st.just(1) | EXTREME_INTS),
        "device_id": field(st.just(device_id) | HOSTILE_TEXT),
        "ts": field(st.integers(now_ms - 10**9, now_ms + 10**6) | EXTREME_INTS),
        "boot_id": field(boot_ids | HOSTILE_TEXT),
    }
    if kind_name == "telemetry":
        base["seq"] = field(seqs | EXTREME_INTS)
        base["readings"] = field(st.dictionaries(metric, ANY_FLOAT | ANY_INT, max_size=4))
    elif kind_name == "event":
        base["seq"] = field(seqs | EXTREME_INTS)
        base["type"] = field(metric_names)
        base["data"] = field(st.dictionaries(metric, json_values(3), max_size=4))
        base["value"] = field(ANY_FLOAT | ANY_INT | st.none())
        base["metric"] = field(metric | st.none())
    else:
        base["state"] = field(st.sampled_from(["online", "offline"]))
        base["config_version"] = field(ANY_INT)
    extra = st.dictionaries(HOSTILE_TEXT, json_values(6), max_size=2)
    return st.builds(lambda fixed, more: {**more, **fixed}, st.fixed_dictionaries(base), extra)


_KINDS: dict[Channel, type[Telemetry | Event | Status]] = {
    Channel.TELEMETRY: Telemetry,
    Channel.EVENT: Event,
    Channel.STATUS: Status,
}
SUBSCRIBED = [f"xh/v1/+/+/+/{c.value}" for c in _KINDS]


def contract_refuses(topic: str, payload: bytes) -> bool:
    """Whether the wire contract alone refuses the message (topic or payload)."""
    try:
        kind = _KINDS.get(parse_topic(topic).channel)
        if kind is None:
            return True
        decode(payload, kind)  # type: ignore[type-var]  # one of the three
    except RejectedMessage:
        return True
    return False
