"""The real edge agent under hostile commands from the broker: each refused with a reason, the
agent keeps running; and a worker thread that dies anyway ends the process (exit 70)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from telemetry_core.threads import THREAD_DIED_EXIT_CODE
from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, publish_and_wait, write_config
from tests.unit.edge_agent.test_hostile_commands import HOSTILE, cmd

pytestmark = pytest.mark.integration

DEVICE = "dr-jj-000090"
BASE = f"xh/v1/jiaojiang/drain/{DEVICE}"
ENTRY = ("-m", "edge_agent", "--config")


def _agent(tmp_path: Path, url: str, driver: str) -> AgentProcess:
    config = write_config(
        tmp_path / "edge.toml", url, DEVICE, tmp_path / "state",
        driver=f"tests.integration.edge_child:{driver}", kind="drain", log_level="info",
    )  # fmt: skip
    return AgentProcess(config, tmp_path / "agent.log", entry=ENTRY)


def test_hostile_commands_are_refused_and_the_agent_lives(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"{BASE}/#", "rec-hostile")
    agent = _agent(tmp_path, broker.url, "ramp_driver")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or bool(recorder.statuses()), timeout_s=60, message="birth"
        )
        for payload in [*HOSTILE, cmd("good-1", config={"interval_s": 0.5})]:
            publish_and_wait(broker.host, broker.port, f"{BASE}/cmd", payload)
        wait_until(
            lambda: agent.check() or any(a.cmd_id == "good-1" for a in recorder.acks()),
            timeout_s=60,
            message="the good command acknowledged after the hostile ones",
        )

        def refusals() -> int:
            acks = sum(not a.ok and bool(a.reason) for a in recorder.acks())
            return acks + sum(e.type == "command_rejected" for e in recorder.events())

        wait_until(
            lambda: agent.check() or refusals() >= len(HOSTILE),
            timeout_s=60,
            message="a refusal for every hostile command",
        )
        assert refusals() == len(HOSTILE)
        seq_before = max(t.seq for t in recorder.telemetry())
        wait_until(
            lambda: agent.check() or max(t.seq for t in recorder.telemetry()) > seq_before + 2,
            timeout_s=60,
            message="telemetry still flowing",
        )
        assert agent.terminate() == 0
    finally:
        agent.kill()
        recorder.close()


def test_a_dead_network_thread_ends_the_agent_with_code_70(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    recorder = Recorder(broker.host, broker.port, f"{BASE}/#", "rec-death")
    agent = _agent(tmp_path, broker.url, "network_fault_driver")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or bool(recorder.statuses()), timeout_s=60, message="birth"
        )
        publish_and_wait(broker.host, broker.port, f"{BASE}/cmd", cmd("any-1", op="restart"))
        assert agent.proc is not None
        code = agent.proc.wait(60)
    finally:
        agent.kill()
        recorder.close()
    assert code == THREAD_DIED_EXIT_CODE, agent.log_text()[-3000:]
    died = [
        json.loads(line)
        for line in agent.log_text().splitlines()
        if line.startswith("{") and '"thread_died"' in line
    ]
    assert [(d["thread"], d["error"]) for d in died] == [(f"mqtt-{DEVICE}", "RuntimeError")]
