"""The randomised hostile stream of the ingester (``tests.hostile``), aimed at the alerting
service process: every delivered hostile message is dead-lettered with a reason (none an
``internal_error``), the valid ones give exactly the transitions an offline replay gives, and the
process neither stalls nor dies."""

from __future__ import annotations

import collections
import random
import signal
import time
from pathlib import Path

import pytest
from paho.mqtt.client import topic_matches_sub

from telemetry_core.errors import RejectedMessage
from telemetry_core.schema import Event, Status, Telemetry, decode
from telemetry_core.topics import Channel, parse_topic
from tests.hostile import Mutator, interleave
from tests.integration.alerting.kit import (
    MIN_MS,
    Collector,
    Publisher,
    make_fleet,
    replayed_ids,
    series,
    service_subprocess,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SEED = 20261202
READINGS = 300
_KINDS: dict[Channel, type[Telemetry | Event | Status]] = {
    Channel.TELEMETRY: Telemetry, Channel.EVENT: Event, Channel.STATUS: Status,
}  # fmt: skip
_SUBSCRIBED = [f"xh/v1/+/+/+/{c.value}" for c in _KINDS]


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


def test_a_randomised_hostile_stream_is_dead_lettered_and_the_valid_part_evaluated(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet, db = tmp_path / "fleet.csv", tmp_path / "state.db"
    registry = make_fleet(fleet)
    rng = random.Random(SEED)
    t0 = int(time.time() * 1000) - (READINGS + 60) * MIN_MS
    levels = [[rng.choice([0.3, 0.8, 1.2]) for _ in range(READINGS)] for _ in registry]
    per_device = [series(d.device_id, t0 + k, levels[k]) for k, d in enumerate(registry)]
    valid = [m for group in zip(*per_device, strict=True) for m in group]
    mutator = Mutator(random.Random(SEED), contract_refuses)
    stream = list(interleave(valid, mutator, hostile_per_valid=2.0, rng=random.Random(SEED)))
    delivered = [(t, f) for t, _, f in stream if any(topic_matches_sub(s, t) for s in _SUBSCRIBED)]
    hostile = sum(1 for _, f in delivered if f not in (None, "duplicate"))
    expected = replayed_ids(valid, fleet)
    config = write_config(tmp_path / "alerting.toml", fleet, mosquitto.url, db)
    collector = Collector(mosquitto.host, mosquitto.port)
    log = tmp_path / "alerting.log"
    child = service_subprocess(config, log)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    try:
        wait_until(lambda: b"mqtt_subscribed" in log.read_bytes(), timeout_s=60)
        publisher.publish([(t, p) for t, p, _ in stream])
        wait_until(lambda: len(collector.dead_letters()) >= hostile, timeout_s=180,
                   message=f"{hostile} dead letters")  # fmt: skip
        wait_until(lambda: {t.transition_id for t in collector.unique()} >= expected,
                   timeout_s=120, message="the transitions of the valid messages")  # fmt: skip
        assert child.poll() is None, "the alerting service died"
        assert {t.transition_id for t in collector.unique()} == expected
        reasons = collections.Counter(str(d["reason"]) for d in collector.dead_letters())
        assert "internal_error" not in reasons, reasons
        assert sum(reasons.values()) == hostile
    finally:
        publisher.close()
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        collector.close()
    assert child.returncode == 0
