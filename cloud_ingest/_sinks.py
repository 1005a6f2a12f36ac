"""Sinks: where batches of line protocol go. ``start()``, ``write(body)``, ``close()``.

A failed write raises :class:`SinkError` saying whether to retry: outages (no answer, 5xx, 429)
and configuration faults (401, 403, 404) are retried while the broker holds the backlog; a 400 or
413 means the database refused data, and the writer splits the batch to find the bad points.
"""

from __future__ import annotations

from typing import Final, Protocol

import httpx

from cloud_ingest.errors import SinkError

_RETRY_CONFIG_STATUSES: Final = frozenset({401, 403, 404})


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
            raise SinkError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if response.status_code in (200, 204):
            return
        status = response.status_code
        raise SinkError(response.text[:500], retryable=is_retryable(status), status=status)

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None
