"""Coverage-guided fuzz target (atheris): the alerting service's input, and the ingester's
storage of the alerting service's output.

Input: the first byte picks the topic, the rest is the payload. A device topic (telemetry,
event, status of a registry device, of another partition, of an unknown device, or fuzzed
text) goes through the alerting service's real :class:`Router` and the real engine with the
default rule set; an alerting topic (``xh/v1/_alert``, ``_incident``, ``_alerting/../stats``,
``_deadletter/alerting``) through the ingester's real pipeline. A finding is an exception other
than a :class:`RejectedMessage` (the service would dead-letter it as ``internal_error``: a bug),
a transition the contract's decoder refuses, or a point a strict line-protocol parser refuses.

Run: ``python -m tests.fuzz.fuzz_alerting [libFuzzer flags] CORPUS_DIR...``, or ``run.py``.
"""

from __future__ import annotations

import logging
import sys

import atheris
import structlog

with atheris.instrument_imports(include=["telemetry_core", "alerting", "cloud_ingest"]):
    import msgspec

    from alerting import Engine, default_rules_dir, load_rules
    from alerting._consumer_route import Router
    from cloud_ingest import Limits, Pipeline, SeqTracker
    from telemetry_core.errors import RejectedMessage
    from telemetry_core.kinds import DeviceKind
    from telemetry_core.registry import Device, Registry
    from telemetry_core.schema import AlertTransition
    from tests.lineproto import parse_line

NOW_MS = 1_786_291_200_000
_DRAIN = {"pipe_diameter_m": 0.6, "invert_elev_m": 1.2, "ground_elev_m": 4.1, "max_depth_m": 2.9}
FLEET = Registry(
    [
        Device("dr-jj-000001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, _DRAIN),
        Device("wc-jj-000001", DeviceKind.TOILET, "jiaojiang", 28.6, 121.4, 60.0,
               {"toilet_class": 1}),
        Device("gb-jj-000001", DeviceKind.GARBAGE, "jiaojiang", 28.6, 121.4, 60.0, {}),
        Device("dr-hy-000001", DeviceKind.DRAIN, "huangyan", 28.6, 121.3, 60.0, _DRAIN),
    ]
)  # fmt: skip
DEVICE_TOPICS = [
    "xh/v1/jiaojiang/drain/dr-jj-000001/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-000001/event",
    "xh/v1/jiaojiang/drain/dr-jj-000001/status",
    "xh/v1/jiaojiang/toilet/wc-jj-000001/telemetry",
    "xh/v1/jiaojiang/garbage/gb-jj-000001/telemetry",
    "xh/v1/huangyan/drain/dr-hy-000001/telemetry",
    "xh/v1/jiaojiang/drain/dr-jj-000002/telemetry",
]
ALERT_TOPICS = [
    "xh/v1/_alert/jiaojiang/dr-jj-000001",
    "xh/v1/_incident/jiaojiang/inc-1",
    "xh/v1/_alerting/al-1/stats",
    "xh/v1/_deadletter/alerting",
]
TOPICS = DEVICE_TOPICS + ALERT_TOPICS
_MINE = Registry(d for d in FLEET if d.district == "jiaojiang")
_ROUTER = Router(
    Engine(load_rules(default_rules_dir()), _MINE), FLEET, ("jiaojiang",),
    max_payload_bytes=16_384, max_future_s=300.0,
)  # fmt: skip
_PIPELINE = Pipeline(FLEET, Limits(), SeqTracker())
_DECODE = msgspec.json.Decoder(AlertTransition)


def one_input(data: bytes) -> None:
    """One fuzz input: evaluated or refused with a reason; stored points that parse."""
    if not data:
        return
    selector, payload = data[0], data[1:]
    if selector < 16 * len(TOPICS):
        topic = TOPICS[selector % len(TOPICS)]
    else:
        fdp = atheris.FuzzedDataProvider(payload)
        topic = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    if topic.startswith("xh/v1/_"):
        _store(topic, payload)
    else:
        _evaluate(topic, payload)


def _evaluate(topic: str, payload: bytes) -> None:
    try:
        transitions = _ROUTER.handle(topic, payload, NOW_MS)
    except RejectedMessage:
        return
    for t in transitions:
        _DECODE.decode(msgspec.json.encode(t))  # what we publish, others must be able to read


def _store(topic: str, payload: bytes) -> None:
    try:
        accepted = _PIPELINE.process(topic, payload, NOW_MS)
    except RejectedMessage:
        return
    for line in accepted.line.split("\n"):
        parse_line(line)


def main() -> None:
    """libFuzzer's entry (logs below critical are dropped: a refusal logs, and that is noise)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
