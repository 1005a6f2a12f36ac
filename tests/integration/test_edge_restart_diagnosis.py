"""A broker restart is reported as a restart; a refusal is reported as a refusal.

Real agents (``tests.integration.edge_child``, the production wiring) against a real Mosquitto:
a restart of the broker must give a warning and a reconnect, never an error blaming the ACL or
a duplicate client id; two agents with one client id (Mosquitto takes the session from one to
give it to the other, without saying so) must give that error. The ACL and password refusals
are in test_edge_secrets.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, write_config

pytestmark = pytest.mark.integration

DEVICE = "dr-jj-000077"


def _events(agent: AgentProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in agent.log_text().splitlines() if line.startswith("{")]


def test_a_broker_restart_is_a_reconnect_not_an_acl_or_client_id_error(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"xh/v1/+/+/{DEVICE}/telemetry", "rec-rst")
    config = write_config(
        tmp_path / "edge.toml", broker.url, DEVICE, tmp_path / "state", log_level="info"
    )
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(lambda: agent.check() or len(recorder.telemetry()) >= 3, timeout_s=60,
                   message="live telemetry")  # fmt: skip
        broker.restart()
        wait_until(
            lambda: agent.check() or any(e["event"] == "mqtt_reconnected" for e in _events(agent)),
            timeout_s=60, message="the agent reconnected",
        )  # fmt: skip
        seen = len(recorder.telemetry())
        wait_until(lambda: len(recorder.telemetry()) > seen + 3, timeout_s=60,
                   message="telemetry after the restart")  # fmt: skip
    finally:
        assert agent.terminate() == 0
        recorder.close()
    events = _events(agent)
    names = [e["event"] for e in events]
    assert "mqtt_connection_lost" in names
    assert [e["level"] for e in events if e["event"] == "mqtt_connection_lost"] == ["warning"]
    errors = [e for e in events if e["level"] == "error"]
    assert errors == [], errors
    assert "client id" not in agent.log_text()
    assert "ACL" not in agent.log_text()


def test_two_agents_with_one_client_id_are_told_apart_from_a_restart(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    agents = []
    for name in ("one", "two"):
        config = write_config(
            tmp_path / f"{name}.toml", broker.url, DEVICE, tmp_path / name, log_level="info",
            reconnect_max_s=0.5,
        )  # fmt: skip
        agents.append(AgentProcess(config, tmp_path / f"{name}.log"))
    for agent in agents:
        agent.start()
    try:
        wait_until(
            lambda: any(
                a.check() or any(e["event"] == "mqtt_connection_unstable" for e in _events(a))
                for a in agents
            ),
            timeout_s=90, message="the duplicate client id found",
        )  # fmt: skip
    finally:
        for agent in agents:
            agent.terminate()
    found = next(e for a in agents for e in _events(a) if e["event"] == "mqtt_connection_unstable")
    assert found["level"] == "error"
    assert "same client id" in found["hint"]
