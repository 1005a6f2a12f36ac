"""Coverage-guided fuzz target (atheris): the ingest path, topic and payload to points.

Input: the first byte picks the topic (a registry device's telemetry, event or status topic,
a topic of another device, a mismatched district, or fuzzed text), the rest is the payload.
One message runs through the ingester's real :class:`BatchBuilder` (pipeline, dead letters).
A finding is: an exception escaping the builder, an ``internal_error`` dead letter (the
pipeline failed in a way nobody foresaw), or a point that a strict line-protocol parser
(``tests.lineproto``) refuses or that cannot be sent as UTF-8.

Run: ``python -m tests.fuzz.fuzz_ingest [libFuzzer flags] CORPUS_DIR...``, or ``tests/fuzz/run.py``.
"""

from __future__ import annotations

import logging
import sys

import atheris
import structlog

with atheris.instrument_imports(include=["telemetry_core", "cloud_ingest", "tests.lineproto"]):
    from cloud_ingest import Limits, Pipeline, SeqTracker
    from cloud_ingest._batch import BatchBuilder
    from telemetry_core.kinds import DeviceKind
    from telemetry_core.registry import Device, Registry
    from tests.lineproto import parse_line

NOW_MS = 1_764_000_000_000
FLEET = Registry(
    [
        Device("drain-001", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0, {}),
        Device("toilet-001", DeviceKind.TOILET, "luqiao", 28.5, 121.3, 60.0, {}),
    ]
)
TOPICS = [
    "xh/v1/jiaojiang/drain/drain-001/telemetry",
    "xh/v1/jiaojiang/drain/drain-001/event",
    "xh/v1/jiaojiang/drain/drain-001/status",
    "xh/v1/luqiao/toilet/toilet-001/telemetry",
    "xh/v1/luqiao/toilet/toilet-001/event",
    "xh/v1/luqiao/drain/drain-001/telemetry",
    "xh/v1/jiaojiang/drain/drain-002/telemetry",
    "xh/v1/jiaojiang/drain/drain-001/cmd",
]


class Message:
    """What paho hands over, as far as the builder reads it."""

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic, self.payload, self.mid, self.qos, self.dup = topic, payload, 1, 1, False


# One builder for the whole run: accounting state carries over, as in a real ingester.
BUILDER = BatchBuilder(Pipeline(FLEET, Limits(), SeqTracker()), "fuzz")


def one_input(data: bytes) -> None:
    """One fuzz input: refuse with a reason, or produce points that parse."""
    if not data:
        return
    selector, payload = data[0], data[1:]
    if selector < 16 * len(TOPICS):
        topic = TOPICS[selector % len(TOPICS)]
    else:
        fdp = atheris.FuzzedDataProvider(payload)
        topic = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    batch = BUILDER.build([Message(topic, payload)], 0, NOW_MS)
    for rejection in batch.rejections:
        if rejection.reason.value == "internal_error":
            raise AssertionError(f"internal_error on {topic!r}: {rejection.detail}")
    for line in batch.lines:
        parse_line(line)
        line.encode("utf-8")  # what the writer sends: no lone surrogates


def main() -> None:
    """libFuzzer's entry (logs below critical are dropped: a refusal logs, and that is noise)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
