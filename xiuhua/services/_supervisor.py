"""Start a set of local servers together, stop them all, and tell clients where they are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

import structlog

from telemetry_core.errors import ServiceError
from xiuhua.services._influxdb import InfluxDB
from xiuhua.services._mosquitto import Mosquitto
from xiuhua.services._server import LocalServer

log = structlog.get_logger()


class Supervisor:
    """Starts servers in the given order and stops them in reverse; a context manager.

    If one fails to start, those already running are stopped before the error propagates,
    so a failed start never leaves orphans behind.
    """

    def __init__(self, servers: Sequence[LocalServer]) -> None:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            # Lookup by name (``get``) needs one server of each kind.
            raise ServiceError(f"one server per kind, got {names}")
        self._servers = tuple(servers)

    @property
    def servers(self) -> tuple[LocalServer, ...]:
        """The supervised servers, in start order."""
        return self._servers

    def get(self, name: str) -> LocalServer | None:
        """The server called ``name`` ("mosquitto", "influxdb", "victoria-metrics"), if any."""
        return next((s for s in self._servers if s.name == name), None)

    def start(self) -> None:
        """Start every server; on failure stop the started ones and raise ServiceError."""
        started: list[LocalServer] = []
        try:
            for server in self._servers:
                server.start()
                started.append(server)
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise

    def stop(self) -> None:
        """Stop every server (reverse order), even if stopping one of them fails."""
        self._each_reversed(lambda server: server.stop())

    def close(self) -> None:
        """Stop every server and remove the directories they created themselves."""
        self._each_reversed(lambda server: server.close())

    def _each_reversed(self, action: Callable[[LocalServer], None]) -> None:
        failures: list[str] = []
        for server in reversed(self._servers):
            try:
                action(server)
            except (OSError, ServiceError) as exc:
                log.exception("service_stop_failed", service=server.name)
                failures.append(f"{server.name}: {exc}")
        if failures:
            raise ServiceError("could not stop cleanly: " + "; ".join(failures))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def settings_toml(mosquitto: Mosquitto | None, influxdb: InfluxDB | None, database: str) -> str:
    """A settings TOML snippet that points Xiuhua's components at these servers."""
    parts: list[str] = []
    if mosquitto is not None:
        parts.append(f'[mqtt]\nurl = "{mosquitto.url}"\n')
    if influxdb is not None:
        parts.append(f'[influx]\nurl = "{influxdb.url}"\napi = "v1"\ndatabase = "{database}"\n')
    return "\n".join(parts)


def settings_env(
    mosquitto: Mosquitto | None, influxdb: InfluxDB | None, database: str
) -> dict[str, str]:
    """The same as :func:`settings_toml`, as ``XIUHUA_<SECTION>__<KEY>`` variables."""
    env: dict[str, str] = {}
    if mosquitto is not None:
        env["XIUHUA_MQTT__URL"] = mosquitto.url
    if influxdb is not None:
        env |= {
            "XIUHUA_INFLUX__URL": influxdb.url,
            "XIUHUA_INFLUX__API": "v1",
            "XIUHUA_INFLUX__DATABASE": database,
        }
    return env
