"""VictoriaMetrics (single node) as a child process; it also speaks the InfluxDB write API."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import httpx

from telemetry_core.errors import ServiceError
from xiuhua.services._server import LocalServer

VICTORIA_METRICS_BIN = "/usr/bin/victoria-metrics"


def victoria_argv(port: int, data_dir: Path, retention: str = "100y") -> list[str]:
    """Command line for a private VictoriaMetrics (pure; unit-tested).

    ``-search.latencyOffset=0s``: instant queries see points at once (the default hides the
    last 30 s). ``-search.disableCache``: a test that polls must not get a cached empty answer.
    ``-retentionPeriod=100y``: simulations write timestamps far in the past and VM silently
    drops samples outside retention (the default is one month). Memory is capped because the
    test machine is shared.
    """
    return [
        VICTORIA_METRICS_BIN,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data_dir}",
        f"-retentionPeriod={retention}",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
        "-memory.allowedPercent=10",
    ]


class VictoriaMetrics(LocalServer):
    """A private VictoriaMetrics on 127.0.0.1 storing into ``data_dir``.

    Writes: InfluxDB line protocol on ``/write`` (v1) or ``/api/v2/write`` (v2; ``org`` and
    ``bucket`` are accepted and ignored). Each field becomes a series named
    ``{measurement}_{field}`` with the tags as labels, e.g. ``drain_level_m{device_id="d1"}``.

    Reads, measured here: :meth:`flush` then poll :meth:`export` (``/api/v1/export``) sees a
    new point within ~50 ms. :meth:`query` (PromQL ``/api/v1/query``) sees it after ~1 s, but a
    *new series* queried before VM has indexed it is cached as missing for ~10 s, so poll a
    query with a deadline of 30 s or more, or flush and export first.
    """

    name = "victoria-metrics"

    def __init__(
        self,
        root_dir: Path | None = None,
        *,
        port: int = 0,
        retention: str = "100y",
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 20.0,
        http_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            root_dir, port=port, startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s
        )
        self._retention = retention
        self._http_timeout_s = http_timeout_s
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def write_lp(
        self, lines: str | Iterable[str], *, api: str = "v2", precision: str = "ns"
    ) -> None:
        """Write line protocol via the InfluxDB v1 (``/write``) or v2 (``/api/v2/write``) API."""
        if api not in ("v1", "v2"):
            raise ServiceError(f"api must be 'v1' or 'v2', got {api!r}")
        path = "/api/v2/write" if api == "v2" else "/write"
        text = lines if isinstance(lines, str) else "\n".join(lines)
        response = self._request(
            "POST", path, params={"precision": precision}, content=text.encode()
        )
        if response.status_code != 204:
            raise ServiceError(
                f"victoria-metrics write failed ({response.status_code}): {response.text[:500]}"
            )

    def query(self, promql: str, *, time_s: float | None = None) -> list[dict[str, Any]]:
        """Instant PromQL query; returns the ``data.result`` list (raises on an error status)."""
        params = {"query": promql}
        if time_s is not None:
            params["time"] = f"{time_s:.3f}"
        response = self._request("GET", "/api/v1/query", params=params)
        body = self._ok_json(response, promql)
        return cast(list[dict[str, Any]], body["data"]["result"])

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of series matching ``match`` (e.g. ``{__name__=~"drain_.*"}``).

        Each item has ``metric`` (labels), ``values`` and ``timestamps`` (ms). Only flushed
        data is exported; see :meth:`flush`.
        """
        response = self._request("GET", "/api/v1/export", params={"match[]": match})
        if response.status_code != 200:
            raise ServiceError(
                f"victoria-metrics export {match!r} failed ({response.status_code}): "
                f"{response.text[:500]}"
            )
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def flush(self) -> None:
        """Ask VM to flush buffered samples to searchable storage (``/internal/force_flush``)."""
        response = self._request("GET", "/internal/force_flush")
        if response.status_code != 200:
            raise ServiceError(f"victoria-metrics force_flush failed ({response.status_code})")

    def _ok_json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = cast(dict[str, Any], response.json())
        except ValueError as exc:
            raise ServiceError(
                f"victoria-metrics {what!r}: non-JSON reply ({response.status_code})"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise ServiceError(
                f"victoria-metrics {what!r} failed ({response.status_code}): {body.get('error')}"
            )
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=self._http_timeout_s)
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"victoria-metrics at {self.url} did not answer {path}: {exc}"
            ) from exc

    def _on_stopped(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _write_config(self) -> None:
        """VictoriaMetrics takes flags only; nothing to write."""

    def _argv(self) -> list[str]:
        return victoria_argv(self.port, self.data_dir, self._retention)

    def _probe(self) -> bool:
        try:
            with httpx.Client(timeout=2.0) as client:
                response = client.get(f"{self.url}/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text.strip() == "OK"
