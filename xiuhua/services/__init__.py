"""Local servers started by the project: Mosquitto, InfluxDB 1.x, VictoriaMetrics, PostgreSQL.

Each runs as our child process on 127.0.0.1 with a free port, its config and data in a
directory of its own, and stops when we stop (or die). See ``docs/services.md``.
"""

from xiuhua.services._influxdb import InfluxConfig, InfluxDB, quote_ident, render_influxdb_conf
from xiuhua.services._mosquitto import (
    Mosquitto,
    MosquittoConfig,
    TlsFiles,
    make_test_certificates,
    mqtt_answers,
    render_mosquitto_conf,
)
from xiuhua.services._postgres import PostgreSQL, postgres_argv
from xiuhua.services._process import die_with_parent, free_port, spawn, terminate
from xiuhua.services._server import LocalServer
from xiuhua.services._supervisor import Supervisor, settings_env, settings_toml
from xiuhua.services._victoria import VictoriaMetrics, victoria_argv
from xiuhua.services._wait import WaitTimeoutError, wait_until

__all__ = [
    "InfluxConfig",
    "InfluxDB",
    "LocalServer",
    "Mosquitto",
    "MosquittoConfig",
    "PostgreSQL",
    "Supervisor",
    "TlsFiles",
    "VictoriaMetrics",
    "WaitTimeoutError",
    "die_with_parent",
    "free_port",
    "make_test_certificates",
    "mqtt_answers",
    "postgres_argv",
    "quote_ident",
    "render_influxdb_conf",
    "render_mosquitto_conf",
    "settings_env",
    "settings_toml",
    "spawn",
    "terminate",
    "victoria_argv",
    "wait_until",
]
