"""Secrets stay out of logs: a real agent process, with a good and with a wrong password.

Runs the device entry (``python -m edge_agent``) with the firmware-driver factory of the test
child, so the summary it prints, its structlog stderr and paho's errors are all captured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent import cloud_acl, device_acl
from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, write_config

pytestmark = pytest.mark.integration

GOOD, BAD = "dr-jj-000061", "dr-jj-000062"
GOOD_PASSWORD = "Tq7-good-secret-4411"  # noqa: S105 - a test broker's credential
WRONG_PASSWORD = "Zx9-wrong-secret-8822"  # noqa: S105 - a test broker's credential
USERS = {GOOD: GOOD_PASSWORD, BAD: "Kp3-real-secret-5533", "cloud": "Cl0ud-secret-6644"}
ENTRY = ("-m", "edge_agent", "--config")
DRIVER = "tests.integration.edge_child:ramp_driver"


def test_passwords_never_reach_the_logs(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory(users=USERS, acl=device_acl() + "\n" + cloud_acl("cloud"))
    recorder = Recorder(
        broker.host, broker.port, "xh/v1/#", "rec-secrets", ("cloud", USERS["cloud"])
    )
    common = {"driver": DRIVER, "kind": "drain", "log_level": "debug"}
    good_cfg = write_config(
        tmp_path / "good.toml", broker.url, GOOD, tmp_path / "good", username=GOOD,
        password=GOOD_PASSWORD, **common,
    )  # fmt: skip
    # The wrong password comes from the environment, the other documented route.
    bad_cfg = write_config(
        tmp_path / "bad.toml", broker.url, BAD, tmp_path / "bad", username=BAD, **common
    )
    good = AgentProcess(good_cfg, tmp_path / "good.log", entry=ENTRY)
    bad = AgentProcess(
        bad_cfg, tmp_path / "bad.log", {"XIUHUA_MQTT__PASSWORD": WRONG_PASSWORD}, entry=ENTRY
    )
    good.start()
    bad.start()
    try:
        wait_until(
            lambda: good.check() or any(t.device_id == GOOD for t in recorder.telemetry()),
            timeout_s=60,
            message="the agent with the right password publishes",
        )
        wait_until(
            lambda: bad.check() or bad.log_text().count("mqtt_connect_refused") >= 2,
            timeout_s=60,
            message="the agent with the wrong password is refused (and retries)",
        )
    finally:
        good.terminate()
        bad.terminate()
        recorder.close()
    good_log, bad_log = good.log_text(), bad.log_text()
    assert f"as {GOOD}" in good_log, "the summary names the user"
    assert "edge_stopped" in good_log
    assert "Not authorized" in bad_log or "Bad user name or password" in bad_log
    refusal = next(json.loads(line) for line in bad_log.splitlines()
                   if '"mqtt_connect_refused"' in line)  # fmt: skip
    assert refusal["level"] == "error"
    assert "mqtt.password" in refusal["hint"]
    assert "mqtt_reconnected" not in bad_log, "a refusal is not a restart"
    for text in (good_log, bad_log):
        for secret in USERS.values():
            assert secret not in text
        assert WRONG_PASSWORD not in text


def test_an_agent_outside_its_acl_is_refused_says_so_and_keeps_running(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    broker = mosquitto_factory(users=USERS, acl=device_acl() + "\n" + cloud_acl("cloud"))
    # The agent runs device GOOD's topics but logs in as BAD: every publish is outside its ACL.
    config = write_config(
        tmp_path / "edge.toml", broker.url, GOOD, tmp_path / "state", username=BAD,
        password=USERS[BAD], driver=DRIVER, kind="drain", log_level="info",
    )  # fmt: skip
    agent = AgentProcess(config, tmp_path / "agent.log", entry=ENTRY)
    agent.start()
    try:
        wait_until(
            lambda: (
                agent.check()
                or agent.log_text().count('"event": "mqtt_dropped_after_refusal"') >= 3
            ),
            timeout_s=60,
            message="the refusal and the unstable connection logged, again and again",
        )
        assert not agent.check(), "the agent keeps running"
    finally:
        assert agent.terminate() == 0
    text = agent.log_text()
    # MQTT v5: Mosquitto 2.0.11 answers with PUBACK "Not authorized", then drops the connection;
    # the agent names the topic and the reason, keeps its readings, and reconnects with back-off.
    assert '"reason": "Not authorized"' in text
    assert f'"topic": "xh/v1/jiaojiang/drain/{GOOD}/' in text
    assert '"event": "mqtt_retry"' in text
