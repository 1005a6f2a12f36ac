"""Gateway mode: many devices over one connection, with a gateway user in the ACL."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import cloud_acl, device_acl, gateway_acl
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from telemetry_core.schema import CONTRACT_VERSION, Command, encode
from telemetry_core.topics import gateway_status_topic
from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, publish_and_wait, write_config

pytestmark = pytest.mark.integration

GATEWAY = "gw-jj-01"
DEVICES = [
    Device(f"dr-jj-{n:06d}", DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 1.0) for n in range(20)
]


def test_gateway_hosts_devices_obeys_commands_and_leaves_a_will(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    users = {GATEWAY: "pw-gateway-5K", "cloud": "pw-cloud-3X"}
    acl = device_acl() + "\n" + gateway_acl(GATEWAY, DEVICES) + "\n" + cloud_acl("cloud")
    broker = mosquitto_factory(users=users, acl=acl)
    cloud = ("cloud", users["cloud"])
    recorder = Recorder(broker.host, broker.port, "xh/v1/jiaojiang/drain/#", "rec-gw", cloud)
    # The gateway's own status lives outside the device topics.
    gateway_topic = gateway_status_topic(GATEWAY)
    gateway_rec = Recorder(broker.host, broker.port, gateway_topic, "rec-gw-own", cloud)
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(DEVICES, fleet)
    config = write_config(
        tmp_path / "gw.toml",
        broker.url,
        GATEWAY,
        tmp_path / "state",
        fleet=fleet,
        username=GATEWAY,
        password=users[GATEWAY],
    )
    agent = AgentProcess(config, tmp_path / "gw.log")
    agent.start()
    try:
        wanted = {d.device_id for d in DEVICES}
        wait_until(
            lambda: {t.device_id for t in recorder.telemetry()} == wanted,
            timeout_s=60,
            message="telemetry from every hosted device",
        )
        births = {s.device_id: s for s in recorder.statuses() if s.state == "online"}
        assert set(births) == wanted
        wait_until(
            lambda: any(s.state == "online" for s in gateway_rec.statuses()),
            timeout_s=60,
            message="the gateway's own birth on " + gateway_topic,
        )
        assert births[DEVICES[3].device_id].reason == f"via gateway {GATEWAY}"

        target = DEVICES[7]
        cmd = Command(
            v=CONTRACT_VERSION, cmd_id="gw-cmd-1", ts=1, op="set_config", config={"interval_s": 2.0}
        )
        topic = f"xh/v1/jiaojiang/drain/{target.device_id}/cmd"
        publish_and_wait(broker.host, broker.port, topic, encode(cmd), cloud)
        wait_until(lambda: len(recorder.acks()) == 1, timeout_s=60, message="ack")
        ack = recorder.acks()[0]
        assert (ack.device_id, ack.ok, ack.config_version) == (target.device_id, True, 1)

        agent.kill()
        wait_until(
            lambda: any(
                s.device_id == GATEWAY and s.state == "offline" for s in gateway_rec.statuses()
            ),
            timeout_s=60,
            message="gateway will",
        )
    finally:
        agent.kill()
        recorder.close()
        gateway_rec.close()
    assert "Traceback" not in agent.log_text()
