"""Every family of ``tests.hostile`` through the batch builder, no network: each mutated message
refused with a reason of its own (never ``internal_error``), every valid one accepted."""

from __future__ import annotations

import collections
import random

import pytest

from cloud_ingest import Limits, Pipeline, SeqTracker
from cloud_ingest._batch import BatchBuilder
from telemetry_core.registry import Registry
from telemetry_core.schema import Event, Status, Telemetry, encode
from tests.hostile import Mutator
from tests.strategies import contract_refuses
from tests.unit.cloud_ingest.conftest import NOW_MS, FakeMessage

BASE = "xh/v1/jiaojiang/drain/drain-001"
VALID = [
    (f"{BASE}/telemetry", encode(Telemetry(v=1, device_id="drain-001", ts=NOW_MS, seq=3,
                                           boot_id="b", readings={"level_m": 1.5}))),
    (f"{BASE}/event", encode(Event(v=1, device_id="drain-001", ts=NOW_MS, seq=4, boot_id="b",
                                   type="threshold_crossed", value=2.0, data={"n": 1}))),
    (f"{BASE}/status", encode(Status(v=1, device_id="drain-001", ts=NOW_MS, boot_id="b",
                                     state="online", config_version=2))),
]  # fmt: skip
PER_FAMILY = 60


@pytest.mark.parametrize("family", Mutator(random.Random(0), contract_refuses).families)
def test_every_mutation_of_a_family_is_refused_with_a_reason(
    registry: Registry, family: str
) -> None:
    mutator = Mutator(random.Random(family), contract_refuses)
    hostile = [mutator.mutate(*VALID[i % len(VALID)], family=family) for i in range(PER_FAMILY)]
    messages = [FakeMessage(h.topic, h.payload, i) for i, h in enumerate(hostile)]
    builder = BatchBuilder(Pipeline(registry, Limits(), SeqTracker()), "t")
    batch = builder.build([*messages, *(FakeMessage(t, p, 99) for t, p in VALID)], 0, NOW_MS)
    reasons = collections.Counter(r.reason.value for r in batch.rejections)
    assert sum(reasons.values()) == PER_FAMILY, reasons
    assert "internal_error" not in reasons
    assert batch.accepted == len(VALID)
