"""PostgreSQL as a child process: ``initdb`` into a private directory, a free port, trust auth.

For the alert store's tests and local runs (``AlertStore("postgresql+psycopg://...")``). Like the
other servers it runs as our child on 127.0.0.1 and dies with us (PR_SET_PDEATHSIG). PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` system user (created by
Debian's ``postgresql`` package) with its data in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from telemetry_core.errors import ServiceError
from xiuhua.services._server import LocalServer

SUPERUSER = "xiuhua"
SYSTEM_USER = "postgres"


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin``, else the directory of ``postgres`` on
    PATH; ``ServiceError`` naming the install step when neither exists."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_version)
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise ServiceError("postgres not found: install the postgresql package (scripts/bootstrap.sh)")


def _version(path: Path) -> float:
    try:
        return float(path.parent.parent.name)
    except ValueError:
        return 0.0


def postgres_argv(bin_dir: Path, data_dir: Path, port: int, socket_dir: Path) -> list[str]:
    """Command line of a private server (pure; unit-tested): loopback only, no Unix socket in
    /var/run, small memory, quiet logs."""
    return [
        str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={socket_dir}",
        "-c", "shared_buffers=16MB", "-c", "max_connections=50", "-c", "log_min_messages=warning",
    ]  # fmt: skip


class PostgreSQL(LocalServer):
    """A private PostgreSQL; ``url(db)`` is a SQLAlchemy URL, ``create_database(name)``."""

    name = "postgresql"

    def __init__(
        self, root_dir: Path | None = None, *, port: int = 0, startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 20.0,
    ) -> None:  # fmt: skip
        super().__init__(
            root_dir, port=port, startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s
        )
        self._bin = postgres_bin_dir()
        self._as = SYSTEM_USER if os.geteuid() == 0 else None
        # As root, our root_dir may sit under directories the postgres user cannot enter.
        self._pg_dir = (
            Path(tempfile.mkdtemp(prefix="xiuhua-pgdata-")) if self._as else self.root_dir
        )

    @property
    def url(self) -> str:
        """The maintenance database's SQLAlchemy URL."""
        return self.db_url("postgres")

    def db_url(self, database: str) -> str:
        """A SQLAlchemy URL for ``database`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        """The cluster directory (``initdb``'s ``-D``)."""
        return self._pg_dir / "pgdata"

    def create_database(self, database: str) -> str:
        """Create ``database`` and return its URL."""
        with self._connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.db_url(database)

    def drop_database(self, database: str) -> None:
        """Drop ``database`` (and its connections)."""
        with self._connect() as conn:
            query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(query.format(sql.Identifier(database)))

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True,
            connect_timeout=5,
        )  # fmt: skip

    def _run_as(self) -> str | None:
        return self._as

    def _write_config(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # an empty directory made by start(); initdb makes its own
        self._own(self._pg_dir)
        argv = [str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]  # fmt: skip
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=120, user=self._as)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise ServiceError(f"initdb failed: {exc} {detail.decode(errors='replace')}") from exc

    def _own(self, path: Path) -> None:
        if self._as is not None:
            entry = pwd.getpwnam(self._as)
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)

    def _argv(self) -> list[str]:
        return postgres_argv(self._bin, self.data_dir, self.port, self._pg_dir)

    def _probe(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        """Stop, and delete the cluster directory too."""
        super().close()
        if self._as is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
