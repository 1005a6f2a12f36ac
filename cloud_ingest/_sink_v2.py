"""InfluxDB 2.x/3.x (and anything speaking ``/api/v2/write``) through influxdb-client."""

from __future__ import annotations

from typing import Any

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from cloud_ingest._sinks import describe_reply, is_retryable
from cloud_ingest.errors import SinkError


class InfluxV2Sink:
    """A synchronous ``WriteApi``: one blocking write per batch, errors as ``SinkError``."""

    def __init__(
        self, url: str, *, token: str, org: str, bucket: str, timeout_s: float = 10.0
    ) -> None:
        self._url = url
        self._token = token
        self._org = org
        self._bucket = bucket
        self._timeout_ms = int(timeout_s * 1000)
        self._client: InfluxDBClient | None = None
        self._write_api: Any = None

    def start(self) -> None:
        """Build the client; our writer does the retrying, so the library's is off."""
        if self._client is None:
            self._client = InfluxDBClient(
                url=self._url, token=self._token, org=self._org, timeout=self._timeout_ms,
                retries=False,
            )  # fmt: skip
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes) -> None:
        """Write the body to the bucket with nanosecond precision."""
        if self._client is None:
            self.start()
        try:
            self._write_api.write(
                bucket=self._bucket, org=self._org, record=body, write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            raise SinkError(
                self._describe(exc, status), retryable=status == 0 or is_retryable(status),
                status=status,
            ) from exc  # fmt: skip
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            detail = f"cannot reach {self._url}: {type(exc).__name__}: {exc}"
            raise SinkError(detail, retryable=True) from exc

    def _describe(self, exc: ApiException, status: int) -> str:
        if not status:
            return f"cannot reach {self._url}: {exc.reason}"
        body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
        headers = {k.lower(): v for k, v in dict(exc.headers or {}).items()}
        return describe_reply(status, headers, body, f"{self._url}/api/v2/write")

    def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
            self._write_api = None
