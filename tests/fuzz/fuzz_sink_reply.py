"""Coverage-guided fuzz target (atheris): the ingester's sinks reading an HTTP error reply.

Input: the first two bytes pick the status (100-599) and the content type (InfluxDB's JSON,
HTML, text, none, or fuzzed text); the rest is the body. The reply goes through the real
``InfluxV1Sink`` over an httpx ``MockTransport``. A finding is: an exception other than
``SinkError`` escaping ``write``, a wrong ``retryable``, or a detail that is not one bounded
line naming the status and the URL (a proxy's page must never be dumped into the log).

Run: ``python -m tests.fuzz.fuzz_sink_reply [libFuzzer flags] CORPUS_DIR...``, or
``tests/fuzz/run.py``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["cloud_ingest"]):
    import httpx

    from cloud_ingest import InfluxV1Sink, SinkError, is_retryable

URL = "http://influx.fuzz:8086"
CONTENT_TYPES = [b"application/json", b"text/html; charset=utf-8", b"text/plain", b""]
MAX_DETAIL = 450


def one_input(data: bytes) -> None:
    """One fuzz input: a refused write whose detail is short, single-line and names the URL."""
    if len(data) < 2:
        return
    status = 200 + data[0] % 400  # 200-599
    if data[1] < 16 * len(CONTENT_TYPES):
        content_type, body = CONTENT_TYPES[data[1] % len(CONTENT_TYPES)], data[2:]
    else:
        fdp = atheris.FuzzedDataProvider(data[2:])
        content_type = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60))
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
    # Header bytes as a server may send them (any octet but CR, LF and NUL, which HTTP/1.1
    # framing refuses before a reply is built); httpx decodes them for ``headers.get``.
    clean = bytes(b for b in content_type if b not in b"\r\n\0")
    headers = [(b"content-type", clean)] if clean else []
    reply = httpx.Response(status, content=body, headers=headers)
    sink = InfluxV1Sink(URL, "db", transport=httpx.MockTransport(lambda _req: reply))
    try:
        sink.write(b"m x=1")
    except SinkError as exc:
        _check(exc, status)
    else:
        if status not in (200, 204):
            raise AssertionError(f"HTTP {status} taken as a success")


def _check(exc: SinkError, status: int) -> None:
    detail = exc.detail
    if exc.status != status or exc.retryable != is_retryable(status):
        raise AssertionError(f"HTTP {status}: status {exc.status}, retryable {exc.retryable}")
    if not detail.startswith(f"HTTP {status} from {URL}/write: "):
        raise AssertionError(f"detail does not name the reply: {detail[:200]!r}")
    if len(detail) > MAX_DETAIL or "\n" in detail or "\r" in detail:
        raise AssertionError(f"detail not one short line ({len(detail)} chars): {detail[:200]!r}")


def main() -> None:
    """libFuzzer's entry."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
