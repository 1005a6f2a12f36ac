"""Config rendering, polling and supervision of the local servers, without starting any."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xiuhua.services
from telemetry_core.errors import ServiceError
from telemetry_core.settings import XiuhuaSettings, load_settings
from xiuhua.commands.services import app
from xiuhua.services import (
    InfluxConfig,
    InfluxDB,
    LocalServer,
    Mosquitto,
    MosquittoConfig,
    Supervisor,
    TlsFiles,
    WaitTimeoutError,
    make_test_certificates,
    quote_ident,
    render_influxdb_conf,
    render_mosquitto_conf,
    settings_env,
    settings_toml,
    victoria_argv,
)
from xiuhua.services._process import tail
from xiuhua.services._wait import poll_until

EXPECTED_EXPORTS = {
    "InfluxConfig", "InfluxDB", "LocalServer", "Mosquitto", "MosquittoConfig", "Supervisor",
    "VictoriaMetrics", "WaitTimeoutError", "free_port", "mqtt_answers", "quote_ident",
    "render_influxdb_conf", "render_mosquitto_conf", "settings_env", "settings_toml",
    "victoria_argv", "wait_until", "TlsFiles", "make_test_certificates",
    "spawn", "terminate", "PostgreSQL", "postgres_argv", "die_with_parent",
}  # fmt: skip


def test_exported_members_are_what_we_meant() -> None:
    assert set(xiuhua.services.__all__) == EXPECTED_EXPORTS
    assert len(xiuhua.services.__all__) == len(EXPECTED_EXPORTS)


def _conf_lines(config: MosquittoConfig) -> list[str]:
    return render_mosquitto_conf(config).splitlines()


def test_mosquitto_conf_bounds_the_queue_in_bytes_not_messages(tmp_path: Path) -> None:
    lines = _conf_lines(MosquittoConfig(port=41000, data_dir=tmp_path, run_as_user="xh"))
    for expected in (
        "listener 41000 127.0.0.1",
        "persistence true",
        f"persistence_location {tmp_path}",
        "autosave_interval 1",
        "autosave_on_changes false",
        "max_queued_messages 0",
        f"max_queued_bytes {256 * 1024 * 1024}",
        "persistent_client_expiration 1d",
        "allow_anonymous true",
        "user xh",
        "set_tcp_nodelay true",
    ):
        assert expected in lines
    assert not any(line.startswith(("password_file", "acl_file")) for line in lines)


def test_mosquitto_conf_in_auth_mode_refuses_anonymous(tmp_path: Path) -> None:
    config = MosquittoConfig(
        port=41000,
        data_dir=tmp_path,
        run_as_user="xh",
        max_queued_bytes=1024,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
    )
    lines = _conf_lines(config)
    assert "allow_anonymous false" in lines
    assert f"password_file {tmp_path / 'passwd'}" in lines
    assert f"acl_file {tmp_path / 'acl'}" in lines
    assert "max_queued_bytes 1024" in lines
    assert "allow_anonymous true" not in lines


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("port", 0, "not a TCP port"),
        ("port", 70000, "not a TCP port"),
        ("max_queued_bytes", 0, "positive bound"),
        ("max_inflight_messages", -1, ">= 0"),
        ("autosave_interval_s", 0, "positive"),
        ("password_file", Path("/x/passwd"), "both a password file and an ACL file"),
    ],
)
def test_mosquitto_config_refuses_bad_values(
    tmp_path: Path, field: str, value: object, match: str
) -> None:
    kwargs: dict[str, object] = {"port": 41000, "data_dir": tmp_path, "run_as_user": "xh"}
    kwargs[field] = value
    with pytest.raises(ServiceError, match=match):
        MosquittoConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("users", "acl", "match"),
    [
        ({"dev1": "pw"}, None, "both users and acl"),
        (None, "topic read #", "both users and acl"),
        ({"dev:1": "pw"}, "", "no ':' or space"),
        ({"dev 1": "pw"}, "", "no ':' or space"),
        ({"dev1": ""}, "", "non-empty, one line"),
        ({"dev1": "a\nb"}, "", "non-empty, one line"),
    ],
)
def test_mosquitto_refuses_bad_credentials_when_built(
    tmp_path: Path, users: dict[str, str] | None, acl: str | None, match: str
) -> None:
    with pytest.raises(ServiceError, match=match):
        Mosquitto(tmp_path, port=41000, users=users, acl=acl)


def test_mosquitto_object_knows_its_places_before_start(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, port=41000, users={"d1": "p"}, acl="pattern read x/%u")
    assert broker.url == "mqtt://127.0.0.1:41000"
    assert (broker.host, broker.port) == ("127.0.0.1", 41000)
    assert broker.data_dir == tmp_path / "data"
    assert broker.log_path == tmp_path / "mosquitto.log"
    assert broker.config.password_file == tmp_path / "passwd"
    assert broker.auth_enabled
    assert not broker.is_running
    assert broker.pid is None


def test_influxdb_conf_is_valid_toml_with_private_ports_and_dirs(tmp_path: Path) -> None:
    data_dir = tmp_path / 'odd "name"'
    conf = tomllib.loads(
        render_influxdb_conf(InfluxConfig(http_port=41001, rpc_port=41002, data_dir=data_dir))
    )
    assert conf["bind-address"] == "127.0.0.1:41002"
    assert conf["reporting-enabled"] is False
    assert conf["http"]["bind-address"] == "127.0.0.1:41001"
    assert conf["http"]["log-enabled"] is False
    assert conf["http"]["max-body-size"] == 64 * 1024 * 1024
    assert conf["data"]["query-log-enabled"] is False
    assert conf["monitor"]["store-enabled"] is False
    assert conf["meta"]["dir"] == str(data_dir / "meta")
    assert conf["data"]["dir"] == str(data_dir / "data")
    assert conf["data"]["wal-dir"] == str(data_dir / "wal")


def test_influx_config_refuses_clashing_or_bad_ports(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="must differ"):
        InfluxConfig(http_port=41001, rpc_port=41001, data_dir=tmp_path)
    with pytest.raises(ServiceError, match="not a TCP port"):
        InfluxConfig(http_port=0, rpc_port=41001, data_dir=tmp_path)
    with pytest.raises(ServiceError, match="not a TCP port"):
        InfluxDB(tmp_path, port=70000, rpc_port=41001)


def test_quote_ident_escapes_quotes_and_refuses_empty() -> None:
    assert quote_ident("xiuhua") == '"xiuhua"'
    assert quote_ident('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ServiceError, match="empty"):
        quote_ident("")


def test_victoria_argv_makes_fresh_points_queryable(tmp_path: Path) -> None:
    argv = victoria_argv(41003, tmp_path, retention="5y")
    assert argv[0].endswith("victoria-metrics")
    assert "-httpListenAddr=127.0.0.1:41003" in argv
    assert f"-storageDataPath={tmp_path}" in argv
    assert "-search.latencyOffset=0s" in argv
    assert "-retentionPeriod=5y" in argv


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _poll(clock: _FakeClock, predicate: object, timeout_s: float = 1.0) -> None:
    poll_until(
        predicate,  # type: ignore[arg-type]
        timeout_s=timeout_s,
        interval_s=0.3,
        message="the thing",
        monotonic_s=clock.monotonic,
        sleep_s=clock.sleep,
    )


def test_poll_until_returns_as_soon_as_the_condition_holds() -> None:
    clock, answers = _FakeClock(), iter([False, False, True])
    _poll(clock, lambda: next(answers))
    assert clock.sleeps == [0.3, 0.3]


def test_poll_until_tries_once_more_at_the_deadline_then_raises() -> None:
    clock, calls = _FakeClock(), []

    def never() -> bool:
        calls.append(clock.now)
        return False

    with pytest.raises(WaitTimeoutError, match=r"timed out after 1 s \(5 tries\): the thing"):
        _poll(clock, never)
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert calls == pytest.approx([100.0, 100.3, 100.6, 100.9, 101.0])


def test_wait_timeout_is_both_an_assertion_and_a_timeout() -> None:
    assert issubclass(WaitTimeoutError, AssertionError)
    assert issubclass(WaitTimeoutError, TimeoutError)
    with pytest.raises(ValueError, match="interval_s > 0"):
        _poll(_FakeClock(), lambda: True, timeout_s=-1)


class _FakeServer(LocalServer):
    """Records lifecycle calls instead of running a process."""

    def __init__(self, root: Path, name: str, journal: list[str], fail: str = "") -> None:
        super().__init__(root, port=41000)
        self.name = name  # type: ignore[misc]  # one fake class stands for several kinds
        self._journal = journal
        self._fail = fail

    @property
    def url(self) -> str:
        return f"fake://{self.name}"

    def start(self) -> None:
        self._act("start")

    def stop(self) -> None:
        self._act("stop")

    def close(self) -> None:
        self._act("close")

    def _act(self, what: str) -> None:
        self._journal.append(f"{what} {self.name}")
        if what == self._fail:
            raise ServiceError(f"{self.name} cannot {what}")

    def _write_config(self) -> None:
        raise NotImplementedError

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _probe(self) -> bool:
        raise NotImplementedError


def _fakes(tmp_path: Path, journal: list[str], fail: dict[str, str]) -> list[LocalServer]:
    return [_FakeServer(tmp_path, n, journal, fail.get(n, "")) for n in ("a", "b", "c")]


def test_supervisor_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    journal: list[str] = []
    with Supervisor(_fakes(tmp_path, journal, {})) as supervisor:
        assert supervisor.get("b") is supervisor.servers[1]
        assert supervisor.get("nope") is None
    assert journal == ["start a", "start b", "start c", "close c", "close b", "close a"]


def test_supervisor_stops_the_started_ones_when_one_fails(tmp_path: Path) -> None:
    journal: list[str] = []
    with pytest.raises(ServiceError, match="c cannot start"):
        Supervisor(_fakes(tmp_path, journal, {"c": "start"})).start()
    assert journal == ["start a", "start b", "start c", "stop b", "stop a"]


def test_supervisor_stops_every_server_even_if_one_fails(tmp_path: Path) -> None:
    journal: list[str] = []
    supervisor = Supervisor(_fakes(tmp_path, journal, {"b": "stop"}))
    with pytest.raises(ServiceError, match="could not stop cleanly: b: b cannot stop"):
        supervisor.stop()
    assert journal == ["stop c", "stop b", "stop a"]


def test_supervisor_refuses_two_servers_of_one_kind(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="one server per kind"):
        Supervisor([_FakeServer(tmp_path, "a", []), _FakeServer(tmp_path, "a", [])])


def test_settings_snippet_loads_as_xiuhua_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("XIUHUA_MQTT__URL", "XIUHUA_INFLUX__URL", "XIUHUA_INFLUX__DATABASE"):
        monkeypatch.delenv(key, raising=False)
    broker = Mosquitto(tmp_path / "m", port=41000)
    influx = InfluxDB(tmp_path / "i", port=41001, rpc_port=41002)
    path = tmp_path / "xiuhua.toml"
    path.write_text(settings_toml(broker, influx, "pipeline"), encoding="utf-8")
    settings = load_settings(XiuhuaSettings, path)
    assert settings.mqtt.url == "mqtt://127.0.0.1:41000"
    assert (settings.influx.url, settings.influx.database) == ("http://127.0.0.1:41001", "pipeline")
    assert settings_env(broker, None, "pipeline") == {"XIUHUA_MQTT__URL": "mqtt://127.0.0.1:41000"}
    assert settings_env(None, influx, "p")["XIUHUA_INFLUX__DATABASE"] == "p"


def test_tail_returns_the_last_lines_or_says_there_is_no_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)), encoding="utf-8")
    assert tail(log, 2) == "line 98\nline 99"
    assert tail(tmp_path / "missing.log") == f"(no log at {tmp_path / 'missing.log'})"


@pytest.mark.parametrize(
    "args",
    [
        ["up", "--mqtt-port", "70000"],
        ["up", "--influx-port", "-1"],
        ["up", "--bogus"],
        ["up", "--log-level", "loud"],
    ],
)
def test_services_up_refuses_bad_options_with_exit_code_2(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "No such command" not in result.output


def test_services_up_refuses_a_file_as_data_dir(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["up", "--data-dir", str(a_file)])
    assert result.exit_code == 2
    # The error may be drawn in a box and wrapped to the terminal's width: compare the words.
    words = " ".join(result.output.replace("│", " ").split())
    assert "is a file" in words


def test_services_help_names_the_up_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "up" in result.output
    assert "127.0.0.1" in result.output


def test_mosquitto_conf_with_a_tls_listener_puts_its_files_after_it(tmp_path: Path) -> None:
    tls = TlsFiles(tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key")
    config = MosquittoConfig(
        port=41000, data_dir=tmp_path, run_as_user="xh", tls_port=41001, tls=tls
    )
    lines = _conf_lines(config)
    assert "listener 41000 127.0.0.1" in lines
    tail_lines = lines[lines.index("listener 41001 127.0.0.1") :]
    assert tail_lines == [
        "listener 41001 127.0.0.1",
        f"cafile {tls.ca_file}",
        f"certfile {tls.cert_file}",
        f"keyfile {tls.key_file}",
    ]
    assert not any("cafile" in line for line in _conf_lines(MosquittoConfig(41000, tmp_path, "xh")))


@pytest.mark.parametrize(
    ("tls_port", "with_files", "match"),
    [(41001, False, "both tls files and tls_port"), (None, True, "both tls files"),
     (41000, True, "other than 41000"), (70000, True, "TCP port other")],
)  # fmt: skip
def test_mosquitto_tls_listener_needs_files_and_its_own_port(
    tmp_path: Path, tls_port: int | None, with_files: bool, match: str
) -> None:
    tls = TlsFiles(tmp_path / "a", tmp_path / "b", tmp_path / "c") if with_files else None
    with pytest.raises(ServiceError, match=match):
        MosquittoConfig(41000, tmp_path, "xh", tls_port=tls_port, tls=tls)


def test_a_broker_without_tls_has_no_tls_url(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="no TLS listener"):
        _ = Mosquitto(tmp_path, port=41000).tls_url


def test_test_certificates_verify_against_their_own_ca_only(tmp_path: Path) -> None:
    mine, other = make_test_certificates(tmp_path / "a"), make_test_certificates(tmp_path / "b")

    def verifies(ca: Path, cert: Path) -> bool:
        argv = ["openssl", "verify", "-CAfile", str(ca), str(cert)]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    assert verifies(mine.ca_file, mine.cert_file)
    assert not verifies(other.ca_file, mine.cert_file)
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(mine.cert_file)],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.0.1" in text


def test_postgres_argv_binds_the_loopback_and_a_private_socket_dir(tmp_path: Path) -> None:
    from xiuhua.services import postgres_argv

    argv = postgres_argv(Path("/usr/lib/postgresql/15/bin"), tmp_path / "pgdata", 5999, tmp_path)
    assert argv[:5] == ["/usr/lib/postgresql/15/bin/postgres", "-D", str(tmp_path / "pgdata"),
                        "-p", "5999"]  # fmt: skip
    assert "listen_addresses=127.0.0.1" in argv
    assert f"unix_socket_directories={tmp_path}" in argv
