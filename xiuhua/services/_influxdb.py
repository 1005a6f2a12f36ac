"""InfluxDB 1.x (Debian's 1.6.7) as a child process, with a small InfluxQL/write client."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

from telemetry_core.errors import ServiceError
from xiuhua.services import _process
from xiuhua.services._server import LocalServer

INFLUXD_BIN = "/usr/bin/influxd"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    """Everything that goes into ``influxdb.conf``; rendered by :func:`render_influxdb_conf`."""

    http_port: int
    rpc_port: int
    data_dir: Path
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for port in (self.http_port, self.rpc_port):
            if not 0 < port <= 65535:
                raise ServiceError(f"influxdb port {port} is not a TCP port")
        if self.http_port == self.rpc_port:
            raise ServiceError("influxdb HTTP and RPC ports must differ")
        if self.max_body_bytes < 0:
            raise ServiceError("max_body_bytes must be >= 0 (0 means unlimited)")


def _toml_str(value: str | Path) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_influxdb_conf(config: InfluxConfig) -> str:
    """The text of ``influxdb.conf`` for ``config`` (pure; unit-tested).

    Quiet and private: no usage reporting (Debian's build names it ``reporting-enabled``), no
    per-request or per-query logs, no ``_internal`` monitor database, and the RPC
    ``bind-address`` on its own free port so that several instances can run side by side.
    """
    data = config.data_dir
    return "\n".join(
        [
            "# Written by xiuhua.services; edits are overwritten at every start.",
            "reporting-enabled = false",
            f"bind-address = {_toml_str(f'127.0.0.1:{config.rpc_port}')}",
            "",
            "[meta]",
            f"  dir = {_toml_str(data / 'meta')}",
            "  logging-enabled = false",
            "",
            "[data]",
            f"  dir = {_toml_str(data / 'data')}",
            f"  wal-dir = {_toml_str(data / 'wal')}",
            "  query-log-enabled = false",
            "  trace-logging-enabled = false",
            "",
            "[monitor]",
            "  store-enabled = false",
            "",
            "[subscriber]",
            "  enabled = false",
            "",
            "[http]",
            "  enabled = true",
            f"  bind-address = {_toml_str(f'127.0.0.1:{config.http_port}')}",
            "  auth-enabled = false",
            "  log-enabled = false",
            "  suppress-write-log = true",
            "  pprof-enabled = false",
            f"  max-body-size = {config.max_body_bytes}",
            "",
            "[logging]",
            '  level = "warn"',
            "  suppress-logo = true",
            "",
            "[continuous_queries]",
            "  log-enabled = false",
            "",
        ]
    )


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, escaping what needs it."""
    if not name:
        raise ServiceError("an InfluxQL identifier must not be empty")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxDB(LocalServer):
    """A private ``influxd`` (1.x) on 127.0.0.1 with meta, data and WAL in ``data_dir``.

    Points survive ``restart()`` and ``kill()`` (the WAL is fsynced on every write by
    default). ``query``/``write_lp`` are a small client for tests, benches and the demo; the
    product's own writer lives in ``cloud_ingest``.
    """

    name = "influxdb"

    def __init__(
        self,
        root_dir: Path | None = None,
        *,
        port: int = 0,
        rpc_port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 20.0,
        http_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            root_dir, port=port, startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s
        )
        self._rpc_port = rpc_port or self._other_free_port()
        self._max_body_bytes = max_body_bytes
        self._http_timeout_s = http_timeout_s
        self._client: httpx.Client | None = None
        _ = self.config  # built once now so that bad settings fail at construction

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the HTTP API)."""
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_port(self) -> int:
        """The backup/restore RPC port (moved off 8088 so instances do not clash)."""
        return self._rpc_port

    @property
    def config_path(self) -> Path:
        """The rendered ``influxdb.conf``."""
        return self.root_dir / "influxdb.conf"

    @property
    def config(self) -> InfluxConfig:
        """The configuration the next start will use."""
        return InfluxConfig(
            http_port=self.port,
            rpc_port=self._rpc_port,
            data_dir=self.data_dir,
            max_body_bytes=self._max_body_bytes,
        )

    def query(self, q: str, db: str | None = None, *, epoch: str | None = None) -> dict[str, Any]:
        """Run InfluxQL via ``POST /query``; return the JSON body, raise ServiceError on error.

        An error in any statement's result is raised too, so a typo never reads as "no data".
        ``epoch`` ("ns", "ms", "s", ...) returns times as integers instead of RFC 3339.
        """
        params = {"q": q}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        response = self._request("POST", "/query", params=params)
        body = self._json(response, q)
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if response.status_code != 200 or "error" in body or errors:
            raise ServiceError(
                f"influxdb query {q!r} failed ({response.status_code}): "
                f"{body.get('error') or '; '.join(errors)}"
            )
        return body

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxDB 1.x)."""
        self.query(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE`` (no error if it does not exist)."""
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def databases(self) -> list[str]:
        """Names from ``SHOW DATABASES``."""
        body = self.query("SHOW DATABASES")
        series = body["results"][0].get("series", [])
        return [row[0] for s in series for row in s.get("values", [])]

    def write_lp(self, db: str, lines: str | Iterable[str], *, precision: str = "ns") -> None:
        """Write line protocol to ``db`` via ``POST /write``; raise ServiceError unless 204."""
        text = lines if isinstance(lines, str) else "\n".join(lines)
        response = self._request(
            "POST", "/write", params={"db": db, "precision": precision}, content=text.encode()
        )
        if response.status_code != 204:
            raise ServiceError(
                f"influxdb write to {db!r} failed ({response.status_code}): {response.text[:500]}"
            )

    def count(self, measurement: str, db: str, field: str = "*") -> int:
        """How many points ``measurement`` holds (the largest per-field count), 0 if none."""
        target = "*" if field == "*" else quote_ident(field)
        # Identifiers go through quote_ident; InfluxQL has no bind parameters for them.
        q = f"SELECT COUNT({target}) FROM {quote_ident(measurement)}"  # noqa: S608
        body = self.query(q, db)
        series = body["results"][0].get("series", [])
        if not series:
            return 0
        counts = [v for v in series[0]["values"][0][1:] if isinstance(v, int)]
        return max(counts, default=0)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=self._http_timeout_s)
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"influxdb at {self.url} did not answer {path}: {exc}") from exc

    @staticmethod
    def _json(response: httpx.Response, q: str) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], response.json())
        except ValueError as exc:
            raise ServiceError(
                f"influxdb query {q!r}: non-JSON reply ({response.status_code}): "
                f"{response.text[:300]}"
            ) from exc

    def _pick_new_ports(self) -> None:
        super()._pick_new_ports()
        self._rpc_port = self._other_free_port()

    def _other_free_port(self) -> int:
        while (port := _process.free_port()) == self.port:
            pass
        return port

    def _on_stopped(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _write_config(self) -> None:
        self.config_path.write_text(render_influxdb_conf(self.config), encoding="utf-8")

    def _argv(self) -> list[str]:
        return [INFLUXD_BIN, "-config", str(self.config_path)]

    def _probe(self) -> bool:
        try:
            with httpx.Client(timeout=2.0) as client:
                return client.get(f"{self.url}/ping").status_code == 204
        except httpx.HTTPError:
            return False
