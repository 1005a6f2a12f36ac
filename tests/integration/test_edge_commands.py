"""Edge agent against a real Mosquitto with per-device users and an ACL.

Covers: spoofing refused by the broker, remote config (bad refused, good applied and surviving
a restart), the last will on SIGKILL and the birth on return.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import cloud_acl, device_acl
from telemetry_core.schema import CONTRACT_VERSION, Command, Telemetry, encode
from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import (
    AgentProcess,
    Recorder,
    publish_and_wait,
    write_config,
)

pytestmark = pytest.mark.integration

DEVICE = "dr-jj-000001"
OTHER = "dr-jj-000002"
BASE = f"xh/v1/jiaojiang/drain/{DEVICE}"
USERS = {DEVICE: "pw-dev-one-7Q", OTHER: "pw-dev-two-9Z", "cloud": "pw-cloud-3X"}
ACL = device_acl() + "\n" + cloud_acl("cloud")


def _telemetry(device_id: str, seq: int) -> bytes:
    return encode(
        Telemetry(
            v=CONTRACT_VERSION,
            device_id=device_id,
            ts=1_764_000_000_000,
            seq=seq,
            boot_id="spoof",
            readings={"level_m": 9.99},
        )
    )


def test_a_device_cannot_publish_under_another_devices_topic(
    mosquitto_factory: MosquittoFactory,
) -> None:
    broker = mosquitto_factory(users=USERS, acl=ACL)
    recorder = Recorder(
        broker.host, broker.port, f"{BASE}/#", "rec-spoof", ("cloud", USERS["cloud"])
    )
    try:
        wait_until(recorder.client.is_connected, timeout_s=30, message="recorder up")
        spoof = publish_and_wait(
            broker.host,
            broker.port,
            f"{BASE}/telemetry",
            _telemetry(DEVICE, 1),
            (OTHER, USERS[OTHER]),
        )
        own = publish_and_wait(
            broker.host,
            broker.port,
            f"{BASE}/telemetry",
            _telemetry(DEVICE, 2),
            (DEVICE, USERS[DEVICE]),
        )
        wait_until(lambda: len(recorder.telemetry()) >= 1, timeout_s=30, message="own message")
        assert own == "Success"
        assert spoof == "Not authorized"
        assert [t.seq for t in recorder.telemetry()] == [2]
    finally:
        recorder.close()


def _command(cmd_id: str, config: dict[str, object]) -> bytes:
    return encode(
        Command(
            v=CONTRACT_VERSION, cmd_id=cmd_id, ts=1_764_000_000_000, op="set_config", config=config
        )
    )


def test_config_commands_will_and_birth(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory(users=USERS, acl=ACL)
    cloud = ("cloud", USERS["cloud"])
    recorder = Recorder(broker.host, broker.port, f"{BASE}/#", "rec-cmd", cloud)
    config = write_config(
        tmp_path / "edge.toml",
        broker.url,
        DEVICE,
        tmp_path / "state",
        username=DEVICE,
        password=USERS[DEVICE],
    )
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: any(s.state == "online" for s in recorder.statuses()),
            timeout_s=60,
            message="birth",
        )
        birth = recorder.statuses()[-1]
        assert birth.config_version == 0

        publish_and_wait(
            broker.host, broker.port, f"{BASE}/cmd", _command("bad-1", {"interval_s": -1}), cloud
        )
        publish_and_wait(
            broker.host,
            broker.port,
            f"{BASE}/cmd",
            _command("good-1", {"interval_s": 0.5, "deadbands": {"level_m": 0.01}}),
            cloud,
        )
        wait_until(lambda: len(recorder.acks()) >= 2, timeout_s=60, message="two acks")
        bad, good = recorder.acks()[:2]
        assert (bad.cmd_id, bad.ok, bad.config_version) == ("bad-1", False, 0)
        assert "interval_s" in bad.reason
        assert (good.cmd_id, good.ok, good.config_version) == ("good-1", True, 1)

        statuses_before = len(recorder.statuses())
        agent.kill()
        wait_until(
            lambda: len(recorder.statuses()) > statuses_before,
            timeout_s=60,
            message="last will after SIGKILL",
        )
        will = recorder.statuses()[-1]
        assert (will.state, will.reason, will.boot_id) == (
            "offline",
            "connection_lost",
            birth.boot_id,
        )

        agent.start()
        wait_until(
            lambda: recorder.statuses()[-1].state == "online",
            timeout_s=60,
            message="birth after restart",
        )
        reborn = recorder.statuses()[-1]
        assert reborn.boot_id != birth.boot_id
        assert reborn.config_version == 1  # the applied config survived the restart
        assert agent.terminate() == 0
        wait_until(
            lambda: recorder.statuses()[-1].state == "offline",
            timeout_s=60,
            message="clean shutdown status",
        )
        assert recorder.statuses()[-1].reason == "shutdown"
    finally:
        agent.kill()
        recorder.close()
