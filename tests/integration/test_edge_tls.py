"""TLS by configuration: the agent talks to Mosquitto's TLS listener with its private CA, and
refuses a broker whose certificate another CA signed, saying so in its log and retrying."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import MosquittoFactory, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, spool_rows_before, write_config
from xiuhua.services import make_test_certificates

pytestmark = pytest.mark.integration

DEVICE = "dr-jj-000077"


def test_agent_publishes_over_tls_with_its_ca_file(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    pki = make_test_certificates(tmp_path / "pki")
    broker = mosquitto_factory(tls=pki)
    recorder = Recorder(broker.host, broker.port, f"xh/v1/+/+/{DEVICE}/#", "rec-tls-ok")
    # Only the TLS port is configured: a plain-text client there would never get a CONNACK.
    config = write_config(
        tmp_path / "edge.toml",
        f"mqtt://127.0.0.1:{broker.tls_port}",
        DEVICE,
        tmp_path / "state",
        tls=True,
        ca_file=str(pki.ca_file),
    )
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or len(recorder.telemetry()) >= 3,
            timeout_s=60,
            message="telemetry over TLS",
        )
        wait_until(
            lambda: any(s.state == "online" for s in recorder.statuses()),
            timeout_s=30,
            message="birth over TLS",
        )
    finally:
        agent.terminate()
        recorder.close()
    assert "mqtt_tls_verify_failed" not in agent.log_text()


def test_agent_with_the_wrong_ca_refuses_the_broker_clearly_and_keeps_its_readings(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    pki = make_test_certificates(tmp_path / "pki")
    stranger = make_test_certificates(tmp_path / "other-ca")
    broker = mosquitto_factory(tls=pki)
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "edge.toml",
        f"mqtts://127.0.0.1:{broker.tls_port}",
        DEVICE,
        state,
        ca_file=str(stranger.ca_file),
    )
    agent = AgentProcess(config, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or agent.log_text().count("mqtt_tls_verify_failed") >= 2,
            timeout_s=60,
            message="the agent reports the failed verification and retries",
        )
        wait_until(
            lambda: agent.check() or spool_rows_before(state / "spool.sqlite3", time.time()) >= 3,
            timeout_s=60,
            message="readings kept in the spool meanwhile",
        )
        assert not agent.check(), "the agent keeps running"
    finally:
        agent.terminate()
    text = agent.log_text()
    assert '"error": "self-signed certificate in certificate chain"' in text
    assert str(stranger.ca_file) in text
    assert '"event": "mqtt_connected"' not in text
