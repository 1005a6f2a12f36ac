"""Mosquitto 2.0 as a child process: our own config, persistence, optional users, ACL and TLS."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from telemetry_core.errors import ServiceError
from xiuhua.services._process import free_port
from xiuhua.services._server import LocalServer

MOSQUITTO_BIN = "/usr/sbin/mosquitto"
MOSQUITTO_HASH_TOOL = "mosquitto_passwd"
DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024

# MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s, empty client id (the broker assigns one).
_PROBE_CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60, 0, 0])
_DISCONNECT = bytes([0xE0, 0x00])
_CONNACK_HEADER = bytes([0x20, 0x02])
_OPENSSL = "openssl"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a TLS listener: the CA that signed the server certificate, it, and its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class MosquittoConfig:
    """Everything that goes into ``mosquitto.conf``; rendered by :func:`render_mosquitto_conf`.

    ``max_queued_messages`` 0 means no count limit; the queue is bounded in bytes instead,
    because Mosquitto's default of 1000 messages silently drops QoS 1 messages queued for a
    slow or offline persistent subscriber (the cloud ingester during a restart).
    """

    port: int
    data_dir: Path
    run_as_user: str
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    max_queued_messages: int = 0
    max_inflight_messages: int = 100
    autosave_interval_s: int = 1
    persistent_client_expiration: str = "1d"
    password_file: Path | None = None
    acl_file: Path | None = None
    log_connections: bool = True
    tls_port: int | None = None
    tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port <= 65535:
            raise ServiceError(f"mosquitto port {self.port} is not a TCP port")
        if self.max_queued_bytes <= 0:
            raise ServiceError("max_queued_bytes must be a positive bound in bytes")
        if self.max_queued_messages < 0 or self.max_inflight_messages < 0:
            raise ServiceError("max_queued_messages and max_inflight_messages must be >= 0")
        if self.autosave_interval_s <= 0:
            raise ServiceError("autosave_interval_s must be positive")
        if (self.password_file is None) != (self.acl_file is None):
            raise ServiceError("auth mode needs both a password file and an ACL file")
        if (self.tls is None) != (self.tls_port is None):
            raise ServiceError("a TLS listener needs both tls files and tls_port")
        if self.tls_port is not None and not (
            0 < self.tls_port <= 65535 and self.tls_port != self.port
        ):
            raise ServiceError(
                f"tls_port {self.tls_port} must be a TCP port other than {self.port}"
            )


def render_mosquitto_conf(config: MosquittoConfig) -> str:
    """The text of ``mosquitto.conf`` for ``config`` (pure; unit-tested)."""
    lines = [
        "# Written by xiuhua.services; edits are overwritten at every start.",
        f"user {config.run_as_user}",
        f"listener {config.port} 127.0.0.1",
        "persistence true",
        f"persistence_location {config.data_dir}",
        "persistence_file mosquitto.db",
        f"autosave_interval {config.autosave_interval_s}",
        "autosave_on_changes false",
        f"persistent_client_expiration {config.persistent_client_expiration}",
        f"max_queued_messages {config.max_queued_messages}",
        f"max_queued_bytes {config.max_queued_bytes}",
        f"max_inflight_messages {config.max_inflight_messages}",
        # Nagle off: else a lone PUBLISH waits for the client's delayed ACK, ~40 ms a hop
        # (measured: an alert transition 43 ms -> 0.8 ms median, bench_alerting_service.py).
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"connection_messages {'true' if config.log_connections else 'false'}",
    ]
    if config.password_file is not None and config.acl_file is not None:
        lines += [
            "allow_anonymous false",
            f"password_file {config.password_file}",
            f"acl_file {config.acl_file}",
        ]
    else:
        lines.append("allow_anonymous true")
    if config.tls is not None:
        # Listener options (cafile, certfile, keyfile) apply to the listener declared above them,
        # so the TLS listener comes last; users and ACL are global and apply to both.
        lines += [
            f"listener {config.tls_port} 127.0.0.1",
            f"cafile {config.tls.ca_file}",
            f"certfile {config.tls.cert_file}",
            f"keyfile {config.tls.key_file}",
        ]
    return "\n".join(lines) + "\n"


def make_test_certificates(directory: Path, host: str = "127.0.0.1", days: int = 2) -> TlsFiles:
    """A fresh private CA and a server certificate for ``host`` (an IP SAN), made with openssl.

    For tests and local experiments only: short-lived, unencrypted keys. Each call makes a new
    CA, so the CA of one call does not verify the server of another (a "wrong CA" test).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        f"subjectAltName=IP:{host}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        encoding="utf-8",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    days_arg = ["-days", str(days)]
    ca_subject = ["-subj", f"/CN=Xiuhua test CA {directory.name}"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    _openssl(["req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), *days_arg,
              *ca_subject, *ca_ext])  # fmt: skip
    _openssl(["req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}"])
    signer = ["-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial"]
    _openssl(["x509", "-req", "-in", str(csr), *signer, "-out", str(crt), *days_arg,
              "-extfile", str(ext)])  # fmt: skip
    return TlsFiles(ca_crt, crt, key)


def _openssl(args: list[str]) -> None:
    try:
        subprocess.run([_OPENSSL, *args], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise ServiceError(
            f"openssl {args[0]} failed: {exc} {detail.decode(errors='replace')}"
        ) from exc


def validate_users(users: Mapping[str, str]) -> None:
    """Refuse user names and passwords that the password file format cannot hold."""
    for user, password in users.items():
        if not user or ":" in user or any(c.isspace() for c in user):
            raise ServiceError(f"mosquitto user name {user!r}: must be non-empty, no ':' or space")
        if not password or "\n" in password or "\r" in password:
            raise ServiceError(f"mosquitto password for {user!r}: must be non-empty, one line")


def write_password_file(users: Mapping[str, str], path: Path) -> None:
    """Write ``user:password`` lines and hash them in place with ``mosquitto_passwd -U``."""
    validate_users(users)
    path.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), encoding="utf-8")
    path.chmod(0o600)
    try:
        subprocess.run(
            [MOSQUITTO_HASH_TOOL, "-U", str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise ServiceError(
            f"mosquitto_passwd failed on {path}: {exc} {detail.decode(errors='replace')}"
        ) from exc


def mqtt_answers(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True if an MQTT broker at host:port replies to CONNECT with a CONNACK.

    Any return code counts (a broker refusing anonymous clients still answers), so this works
    in auth mode too. Never raises.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(_PROBE_CONNECT)
            reply = _recv_exact(sock, 4)
            if reply[:2] != _CONNACK_HEADER:
                return False
            if reply[3] == 0:
                sock.sendall(_DISCONNECT)
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _current_user() -> str:
    # As root, Mosquitto drops to user "mosquitto", which could not write our temp dir.
    return pwd.getpwuid(os.geteuid()).pw_name


class Mosquitto(LocalServer):
    """A private Mosquitto broker on 127.0.0.1 with persistence in ``data_dir``.

    Pass ``users`` (name -> password) and ``acl`` (the text of a Mosquitto ACL file, e.g.
    ``pattern readwrite xh/v1/+/+/%u/#``) to run with ``allow_anonymous false``. Pass ``tls``
    (:func:`make_test_certificates`) to add a TLS listener on a second port (``tls_port``,
    ``tls_url``); the plain listener stays, for probes and test subscribers.

    ``stop()`` and ``restart()`` send SIGTERM, on which Mosquitto saves retained messages,
    persistent sessions and their queued messages to ``mosquitto.db``. ``kill()`` (SIGKILL)
    loses whatever changed since the last autosave (``autosave_interval_s``, 1 s by default).
    """

    name = "mosquitto"

    def __init__(
        self,
        root_dir: Path | None = None,
        *,
        port: int = 0,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        max_inflight_messages: int = 100,
        autosave_interval_s: int = 1,
        tls: TlsFiles | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 20.0,
    ) -> None:
        if (users is None) != (acl is None):
            raise ServiceError("Mosquitto auth mode needs both users and acl (or neither)")
        if users is not None:
            validate_users(users)
        super().__init__(
            root_dir, port=port, startup_timeout_s=startup_timeout_s, stop_timeout_s=stop_timeout_s
        )
        self._users = dict(users) if users is not None else None
        self._acl = acl
        self._max_queued_bytes = max_queued_bytes
        self._max_inflight_messages = max_inflight_messages
        self._autosave_interval_s = autosave_interval_s
        self._tls = tls
        self._tls_port = self._other_free_port() if tls is not None else None
        _ = self.config  # built once now so that bad settings fail at construction

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_port(self) -> int:
        """The TLS listener's port; ``ServiceError`` if this broker has none."""
        if self._tls_port is None:
            raise ServiceError("this Mosquitto has no TLS listener (pass tls=...)")
        return self._tls_port

    @property
    def tls_url(self) -> str:
        """``mqtts://127.0.0.1:TLS_PORT``."""
        return f"mqtts://{self.host}:{self.tls_port}"

    @property
    def config_path(self) -> Path:
        """The rendered ``mosquitto.conf``."""
        return self.root_dir / "mosquitto.conf"

    @property
    def db_path(self) -> Path:
        """The persistence file Mosquitto writes on autosave and on SIGTERM."""
        return self.data_dir / "mosquitto.db"

    @property
    def auth_enabled(self) -> bool:
        """Whether anonymous clients are refused."""
        return self._users is not None

    @property
    def config(self) -> MosquittoConfig:
        """The configuration the next start will use."""
        auth = self._users is not None
        return MosquittoConfig(
            port=self.port,
            data_dir=self.data_dir,
            run_as_user=_current_user(),
            max_queued_bytes=self._max_queued_bytes,
            max_inflight_messages=self._max_inflight_messages,
            autosave_interval_s=self._autosave_interval_s,
            password_file=self.root_dir / "passwd" if auth else None,
            acl_file=self.root_dir / "acl" if auth else None,
            tls_port=self._tls_port,
            tls=self._tls,
        )

    def _write_config(self) -> None:
        config = self.config
        if self._users is not None and config.password_file and config.acl_file:
            write_password_file(self._users, config.password_file)
            config.acl_file.write_text(self._acl or "", encoding="utf-8")
        self.config_path.write_text(render_mosquitto_conf(config), encoding="utf-8")

    def _argv(self) -> list[str]:
        return [MOSQUITTO_BIN, "-c", str(self.config_path)]

    def _pick_new_ports(self) -> None:
        super()._pick_new_ports()
        if self._tls is not None:
            self._tls_port = self._other_free_port()

    def _other_free_port(self) -> int:
        while (port := free_port()) == self.port:
            pass
        return port

    def _probe(self) -> bool:
        return mqtt_answers(self.host, self.port)
