"""Retries with backoff, isolation of refused points, and the v1 sink over a mock transport."""

from __future__ import annotations

import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_ingest import Backoff, BatchWriter, InfluxV1Sink, SinkError, WriterStoppedError
from cloud_ingest._sinks import describe_reply
from tests.unit.cloud_ingest.conftest import FakeSink


def make_writer(sink: FakeSink, keep_going: bool = True) -> tuple[BatchWriter, list[float]]:
    slept: list[float] = []

    def sleep(s: float) -> bool:
        slept.append(s)
        return keep_going

    return BatchWriter(sink, Backoff(0.1, 2.0, random.Random(1)), sleep), slept


def test_outage_is_retried_with_growing_jittered_delays() -> None:
    sink = FakeSink()
    sink.fail = [SinkError("down", retryable=True, status=503) for _ in range(6)]
    writer, slept = make_writer(sink)
    assert writer.write(["a x=1", "b x=2"]) == []
    assert sink.lines == ["a x=1", "b x=2"]
    assert writer.retries == 6
    assert all(0.1 <= s <= 2.0 for s in slept)
    assert max(slept) > 0.4


def test_stop_during_retry_raises_and_writes_nothing() -> None:
    sink = FakeSink()
    sink.fail = [SinkError("down", retryable=True)]
    writer, _ = make_writer(sink, keep_going=False)
    with pytest.raises(WriterStoppedError):
        writer.write(["a x=1"])
    assert sink.bodies == []


def test_refused_points_are_isolated_and_the_rest_written() -> None:
    sink = FakeSink()
    sink.refuse = ["BAD"]
    writer, _ = make_writer(sink)
    lines = [f"m x={i}" for i in range(10)]
    lines[3] = "m BAD=1"
    lines[8] = "m BAD=2"
    assert writer.write(lines) == [3, 8]
    assert set(sink.lines) == {line for line in lines if "BAD" not in line}


def test_backoff_resets_after_success() -> None:
    backoff = Backoff(1.0, 100.0, random.Random(3))
    for _ in range(6):
        backoff.next_delay_s()
    backoff.reset()
    assert backoff.next_delay_s() == 1.0


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (404, True), (400, False)]
)
def test_v1_sink_classifies_statuses(status: int, retryable: bool) -> None:
    transport = httpx.MockTransport(lambda _req: httpx.Response(status, text="nope"))
    sink = InfluxV1Sink("http://influx.test", "db", transport=transport)
    with pytest.raises(SinkError) as info:
        sink.write(b"m x=1")
    assert (info.value.status, info.value.retryable) == (status, retryable)


def test_v1_sink_posts_to_write_with_db_rp_precision_and_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sink = InfluxV1Sink(
        "http://influx.test", "xiuhua", retention_policy="raw", username="u",
        password="p",  # noqa: S106 - a fake for a mock transport  # noqa: S106 - a fake
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    sink.write(b"m x=1")
    sink.close()
    request = seen[0]
    assert request.url.path == "/write"
    assert dict(request.url.params) == {"db": "xiuhua", "precision": "ns", "rp": "raw"}
    assert request.headers["authorization"].startswith("Basic ")
    assert request.content == b"m x=1"


def test_v1_sink_connection_failure_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sink = InfluxV1Sink("http://influx.test", "db", transport=httpx.MockTransport(handler))
    with pytest.raises(SinkError) as info:
        sink.write(b"m x=1")
    assert info.value.retryable
    assert info.value.status is None


PROXY_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    + b"<script>var x = 1;</script>" * 200
    + b"<center>nginx</center></body></html>"
)


def test_a_proxy_page_is_summarised_never_dumped() -> None:
    transport = httpx.MockTransport(
        lambda _req: httpx.Response(502, content=PROXY_PAGE, headers={"content-type": "text/html"})
    )
    sink = InfluxV1Sink("http://influx.test:8086", "db", transport=transport)
    with pytest.raises(SinkError) as info:
        sink.write(b"m x=1")
    detail = info.value.detail
    assert detail == (
        "HTTP 502 from http://influx.test:8086/write: not an InfluxDB reply"
        f' (text/html, {len(PROXY_PAGE)} bytes, title "502 Bad Gateway")'
    )
    assert info.value.retryable


def test_influxdbs_own_error_is_kept_in_one_short_line() -> None:
    body = b'{"error":"partial write: field type conflict:\\n input field \\"x\\" is type float"}'
    detail = describe_reply(400, {"content-type": "application/json"}, body, "http://i/write")
    assert detail == (
        'HTTP 400 from http://i/write: partial write: field type conflict: input field "x" is type'
        " float"
    )
    long = describe_reply(500, {"content-type": "application/json"},
                          b'{"message": "' + b"x" * 5000 + b'"}', "http://i")  # fmt: skip
    assert len(long) < 400
    assert long.endswith("...")
    bare = describe_reply(503, {}, b"Service Unavailable", "http://i")
    assert bare == "HTTP 503 from http://i: not an InfluxDB reply (no content type, 19 bytes)"


def test_a_connection_failure_names_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    sink = InfluxV1Sink("http://influx.test:8086", "db", transport=httpx.MockTransport(handler))
    with pytest.raises(
        SinkError, match=r"cannot reach http://influx.test:8086/write: ConnectError"
    ):
        sink.write(b"m x=1")


@settings(max_examples=100, deadline=None)
@given(
    status=st.integers(100, 599),
    content_type=st.sampled_from(["", "text/html", "application/json", "text/plain; x", "\x00"]),
    body=st.one_of(
        st.binary(max_size=6000),
        st.builds(lambda t: b"<title>" + t.encode() + b"</title>", st.text(max_size=5000)),
        st.builds(lambda m: b'{"error": ' + m.encode() + b"}", st.text(max_size=5000)),
    ),
)
def test_any_reply_is_described_in_one_bounded_line(
    status: int, content_type: str, body: bytes
) -> None:
    detail = describe_reply(status, {"content-type": content_type}, body, "http://i:1/write")
    assert detail.startswith(f"HTTP {status} from http://i:1/write: ")
    assert len(detail) < 450
    assert "\n" not in detail
