"""What the real ingester process says on stderr: where it connects, what fails, what it did.

A "proxy" that answers every write with an HTML error page stands in front of the database;
the ingester must say which broker, database and fleet it uses, summarise the page instead of
dumping it, and stop with counters that agree with what it logged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ingest.kit import (
    Publisher,
    ingest_subprocess,
    make_fleet,
    payload,
    prime_plain_session,
    topic_of,
    with_json_logs,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until
from xiuhua.services._process import free_port

pytestmark = pytest.mark.integration

PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"<p>oops</p>" * 500


class _Proxy(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(502)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _events(log: Path) -> list[dict[str, Any]]:
    text = log.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_log_names_its_servers_summarises_a_proxy_page_and_stops_with_true_counts(
    tmp_path: Path, mosquitto: Mosquitto, proxy: str
) -> None:
    fleet = make_fleet(tmp_path / "fleet.csv", 5)
    config = with_json_logs(write_config(
        tmp_path / "ingest.toml", tmp_path / "fleet.csv", mosquitto.url, proxy, "xiuhua",
        instance="logs-1", retry_min_s=0.1, retry_max_s=0.3,
    ))  # fmt: skip
    filters = [f"xh/v1/+/+/+/{ch}" for ch in ("telemetry", "event", "status")]
    prime_plain_session(mosquitto.host, mosquitto.port, "xiuhua-xiuhua-ingest-logs-1", filters)
    now_ms = int(time.time() * 1000)
    pub = Publisher(mosquitto.host, mosquitto.port)
    assert pub.publish([(topic_of(d), payload(d.device_id, 0, now_ms, 1.0)) for d in fleet]) == 5
    pub.close()
    log = tmp_path / "ingest.log"
    proc = ingest_subprocess(config, log)
    try:
        wait_until(
            lambda: sum(e["event"] == "sink_write_retry" for e in _events(log)) >= 3,
            timeout_s=60, message="write retries against the proxy",
        )  # fmt: skip
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    events = _events(log)
    configured = next(e for e in events if e["event"] == "ingest_configured")
    assert configured["mqtt"] == mosquitto.url
    assert (configured["influx"], configured["database"]) == (proxy, "xiuhua")
    assert configured["registry"] == str(tmp_path / "fleet.csv")
    retries = [e for e in events if e["event"] == "sink_write_retry"]
    assert retries[0]["detail"].startswith(f"HTTP 502 from {proxy}/write: not an InfluxDB reply")
    assert "text/html" in retries[0]["detail"]
    assert "<p>" not in log.read_text(errors="replace"), "the page is not dumped"
    stopped = next(e for e in events if e["event"] == "ingest_stopped")
    assert (stopped["received"], stopped["written"], stopped["abandoned"]) == (5, 0, 5)
    assert stopped["retries"] == len(retries)


def test_an_unreachable_broker_is_named_by_host_and_port(tmp_path: Path) -> None:
    make_fleet(tmp_path / "fleet.csv", 1)
    port = free_port()
    config = with_json_logs(write_config(
        tmp_path / "ingest.toml", tmp_path / "fleet.csv", f"mqtt://127.0.0.1:{port}",
        f"http://127.0.0.1:{free_port()}", "xiuhua", retry_min_s=0.1, retry_max_s=0.2,
    ))  # fmt: skip
    log = tmp_path / "ingest.log"
    proc = ingest_subprocess(config, log)
    try:
        wait_until(
            lambda: any(e["event"] == "mqtt_connect_failed" for e in _events(log)),
            timeout_s=60, message="the connect failure logged",
        )  # fmt: skip
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    failed = next(e for e in _events(log) if e["event"] == "mqtt_connect_failed")
    assert (failed["host"], failed["port"]) == ("127.0.0.1", port)
