"""Fixtures that start real local servers on free ports (see docs/services.md).

Session servers start lazily, on the first test that asks for them, and are shared: give
each test its own topic prefix or database (``influx_db``). Tests that stop, kill or restart
a server must use a factory, which gives them a private one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar
from uuid import uuid4

import pytest

from tests.helpers import InfluxFactory, MosquittoFactory
from xiuhua.services import InfluxDB, LocalServer, Mosquitto, PostgreSQL, VictoriaMetrics


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A shared Mosquitto broker (anonymous access); ``.url``, ``.host``, ``.port``."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """A shared InfluxDB 1.6 server; ``.url``, ``.port``, ``.query(q, db)``, ``.write_lp``."""
    with InfluxDB(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def influx_db(influxdb: InfluxDB) -> Iterator[str]:
    """The name of a fresh database on ``influxdb``, dropped after the test."""
    name = f"t_{uuid4().hex[:12]}"
    influxdb.create_database(name)
    yield name
    influxdb.drop_database(name)


@pytest.fixture(scope="session")
def postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    """A shared PostgreSQL server; ``.db_url(name)``, ``.create_database(name)``."""
    with PostgreSQL(tmp_path_factory.mktemp("postgresql")) as server:
        yield server


@pytest.fixture
def postgres_url(postgresql: PostgreSQL) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh database on ``postgresql``, dropped after the test."""
    name = f"t_{uuid4().hex[:12]}"
    url = postgresql.create_database(name)
    yield url
    postgresql.drop_database(name)


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A shared VictoriaMetrics single-node server; ``.url``, ``.export(match)``."""
    with VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics")) as server:
        yield server


S = TypeVar("S", bound=LocalServer)


class _ServerFactory(Generic[S]):
    """Starts private servers on demand and closes every one of them at teardown."""

    def __init__(self, kind: type[S], tmp: pytest.TempPathFactory) -> None:
        self._kind = kind
        self._tmp = tmp
        self._servers: list[S] = []

    def __call__(self, *, start: bool = True, **kwargs: Any) -> S:
        server = self._kind(self._tmp.mktemp(self._kind.name), **kwargs)
        self._servers.append(server)
        if start:
            server.start()
        return server

    def close_all(self) -> None:
        for server in reversed(self._servers):
            server.close()


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoFactory]:
    """``mosquitto_factory(users=..., acl=..., start=True)``: a private broker per call."""
    factory = _ServerFactory(Mosquitto, tmp_path_factory)
    yield factory
    factory.close_all()


@pytest.fixture
def influxdb_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxFactory]:
    """``influxdb_factory(start=True)``: a private influxd per call, for kill/restart tests."""
    factory = _ServerFactory(InfluxDB, tmp_path_factory)
    yield factory
    factory.close_all()
