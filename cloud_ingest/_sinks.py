"""Sinks: where batches of line protocol go. ``start()``, ``write(body)``, ``close()``.

A failed write raises :class:`SinkError` saying whether to retry: outages (no answer, 5xx, 429)
and configuration faults (401, 403, 404) are retried while the broker holds the backlog; a 400 or
413 means the database refused data, and the writer splits the batch to find the bad points.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final, Protocol

import httpx

from cloud_ingest.errors import SinkError

_RETRY_CONFIG_STATUSES: Final = frozenset({401, 403, 404})
_MESSAGE_CHARS: Final = 300
_TITLE_RE: Final = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def describe_reply(status: int, headers: Mapping[str, str], body: bytes, url: str) -> str:
    """A short, log-safe account of an HTTP error reply from ``url``.

    InfluxDB's own error (JSON ``error`` or ``message``) is kept, truncated. Anything else (an
    HTML page from a proxy, a load balancer's text) is summarised by status, content type and
    size, with an HTML page's title at most: such a body is never dumped into the log.
    """
    content_type = headers.get("content-type", "") or "no content type"
    where = f"HTTP {status} from {url}"
    message = _influx_message(body) if "json" in content_type else None
    if message is not None:
        return f"{where}: {_one_line(message)}"
    title = _TITLE_RE.search(body[:4096])
    shown = f', title "{_one_line(title.group(1).decode("utf-8", "replace"))}"' if title else ""
    return f"{where}: not an InfluxDB reply ({content_type}, {len(body)} bytes{shown})"


def _influx_message(body: bytes) -> str | None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    message = decoded.get("error", decoded.get("message"))
    return str(message) if message is not None else None


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_CHARS else flat[: _MESSAGE_CHARS - 3] + "..."


class Sink(Protocol):
    """A database that takes newline-separated line protocol with nanosecond timestamps."""

    def start(self) -> None:
        """Open connections; may be called again after ``close()``."""
        ...

    def write(self, body: bytes) -> None:
        """Write the points or raise ``SinkError``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def is_retryable(status: int) -> bool:
    """Whether an HTTP status means "try the same batch again later"."""
    return status == 429 or status >= 500 or status in _RETRY_CONFIG_STATUSES


class InfluxV1Sink:
    """InfluxDB 1.x ``POST /write?db=&rp=&precision=ns``, optional basic auth, via httpx."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.Client | None = None

    def start(self) -> None:
        """Open the HTTP connection pool."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._url,
                auth=self._auth,
                timeout=self._timeout_s,
                transport=self._transport,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )

    def write(self, body: bytes) -> None:
        """POST the body; 204 is success, anything else a ``SinkError``."""
        if self._client is None:
            self.start()
        assert self._client is not None  # noqa: S101 - start() just set it
        try:
            response = self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            detail = f"cannot reach {self._url}/write: {type(exc).__name__}: {exc}"
            raise SinkError(detail, retryable=True) from exc
        if response.status_code in (200, 204):
            return
        status = response.status_code
        detail = describe_reply(status, response.headers, response.content, f"{self._url}/write")
        raise SinkError(detail, retryable=is_retryable(status), status=status)

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None
