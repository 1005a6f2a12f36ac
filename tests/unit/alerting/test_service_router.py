"""The router in front of the real engine (default rules): whatever arrives is evaluated or
refused with a reason; properties over hostile topics and payloads."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting import Engine, default_rules_dir, load_rules
from alerting._consumer_route import Router
from telemetry_core.errors import RejectedMessage
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry
from telemetry_core.schema import AlertTransition

NOW_MS = 1_786_291_200_000
RULES = load_rules(default_rules_dir())
DRAIN_ATTRS = {"pipe_diameter_m": 0.6, "invert_elev_m": 1.2, "ground_elev_m": 4.1,
               "max_depth_m": 2.9}  # fmt: skip
TOPICS = [
    "xh/v1/jiaojiang/drain/dr-jj-000001/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-000001/event",
    "xh/v1/jiaojiang/drain/dr-jj-000001/status",
    "xh/v1/jiaojiang/toilet/wc-jj-000001/telemetry",
    "xh/v1/jiaojiang/garbage/gb-jj-000001/telemetry",
    "xh/v1/huangyan/drain/dr-hy-000001/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-000001/cmd",
    "xh/v1/jiaojiang/toilet/dr-jj-000001/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-999999/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-000001",
    "xh/v1/Jiao/drain/dr-jj-000001/telemetry",
    "",
]


def _registry() -> Registry:
    return Registry(
        [
            Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, DRAIN_ATTRS),
            Device("wc-jj-000001", DeviceKind.TOILET, "jiaojiang", 28.6, 121.4, 60.0,
                   {"toilet_class": 1}),
            Device("gb-jj-000001", DeviceKind.GARBAGE, "jiaojiang", 28.6, 121.4, 60.0, {}),
            Device("dr-hy-000001", DeviceKind.DRAIN, "huangyan", 28.6, 121.3, 60.0, DRAIN_ATTRS),
        ]
    )  # fmt: skip


def _router() -> Router:
    registry = _registry()
    mine = Registry(d for d in registry if d.district == "jiaojiang")
    return Router(Engine(RULES, mine), registry, ("jiaojiang",), max_payload_bytes=16_384,
                  max_future_s=300.0)  # fmt: skip


def _valid(device_id: str, ts: int, **readings: float) -> dict[str, object]:
    return {"v": 1, "device_id": device_id, "ts": ts, "seq": 1, "boot_id": "b1",
            "readings": readings or {"level_m": 0.3, "fill_ratio": 0.5}}  # fmt: skip


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats() | st.text(max_size=12))  # fmt: skip
_JSONISH = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
_FIELDS = st.sampled_from(["v", "device_id", "ts", "seq", "boot_id", "readings", "quality",
                           "historical", "state", "type", "value", "metric"])  # fmt: skip


@st.composite
def _payloads(draw: st.DrawFn) -> bytes:
    body = _valid("dr-jj-000001", NOW_MS - draw(st.integers(0, 10**9)))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        body[draw(_FIELDS)] = draw(_JSONISH)
    elif choice == 2:
        body["readings"] = draw(st.dictionaries(
            st.sampled_from(["level_m", "fill_ratio", "cod_mgl", "nh3_mgm3", "battery_v", "x"]),
            st.floats(), max_size=4))  # fmt: skip
    return msgspec.json.encode(body, enc_hook=str) if choice != 3 else b'{"v":1}'


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), payloads=st.lists(_payloads(), min_size=1, max_size=6))
def test_anything_is_evaluated_or_refused_with_a_reason(topic: str, payloads: list[bytes]) -> None:
    router, reasons = _router(), []
    for payload in payloads:
        try:
            out = router.handle(topic, payload, NOW_MS)
        except RejectedMessage as exc:
            reasons.append(exc.reason.value)
            continue
        assert all(isinstance(t, AlertTransition) for t in out)
    assert all(reasons)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=40))
def test_any_sequence_of_valid_readings_gives_transitions_the_contract_accepts(
    values: list[float],
) -> None:
    router = _router()
    topic = TOPICS[0]
    for k, value in enumerate(values):
        body = _valid("dr-jj-000001", NOW_MS - 3_600_000 + k * 60_000, level_m=abs(value) % 5,
                      fill_ratio=abs(value) % 3)  # fmt: skip
        for t in router.handle(topic, msgspec.json.encode(body), NOW_MS):
            assert msgspec.json.decode(msgspec.json.encode(t), type=AlertTransition) == t


@pytest.mark.parametrize(
    ("topic", "reason"),
    [(TOPICS[5], "bad_topic"), (TOPICS[6], "bad_topic"), (TOPICS[7], "topic_mismatch"),
     (TOPICS[8], "unknown_device"), (TOPICS[9], "bad_topic")],
)  # fmt: skip
def test_what_is_not_ours_is_refused_by_reason(topic: str, reason: str) -> None:
    with pytest.raises(RejectedMessage) as err:
        _router().handle(topic, msgspec.json.encode(_valid("dr-jj-000001", NOW_MS)), NOW_MS)
    assert err.value.reason.value == reason
