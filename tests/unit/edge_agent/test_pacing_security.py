"""Back-off, token bucket, ACL text and settings validation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edge_agent import (
    Backoff,
    Secret,
    TokenBucket,
    cloud_acl,
    device_acl,
    gateway_acl,
    load_edge_settings,
)
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device


def test_backoff_is_jittered_capped_and_resets() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(7))
    delays = [backoff.next_delay_s() for _ in range(50)]
    assert all(0.1 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 40  # jittered, not a fixed ladder
    backoff.reset()
    assert backoff.next_delay_s() <= 1.0


def test_token_bucket_limits_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, now_s=0.0)
    assert bucket.take(100, 0.0) == 5
    assert bucket.take(100, 0.0) == 0
    assert bucket.wait_s(0.0) == pytest.approx(0.1)
    assert bucket.take(100, 1.0) == 5  # refilled, but never above the burst
    assert bucket.take(3, 1.25) == 2


def test_device_acl_keeps_each_user_to_its_own_topics() -> None:
    text = device_acl()
    assert "pattern write xh/v1/+/+/%u/telemetry" in text
    assert "pattern read xh/v1/+/+/%u/cmd" in text
    assert "#" not in text.replace("# every", "")


def test_gateway_and_cloud_acl() -> None:
    device = Device("dr-jj-000003", DeviceKind.DRAIN, "jiaojiang", 28.6, 121.4, 60.0)
    text = gateway_acl("gw-jj-01", [device])
    assert text.startswith("user gw-jj-01\n")
    assert "topic write xh/v1/_gateway/gw-jj-01/status\n" in text
    assert "topic write xh/v1/jiaojiang/drain/dr-jj-000003/event" in text
    assert "topic read xh/v1/jiaojiang/drain/dr-jj-000003/cmd" in text
    assert "topic read xh/v1/#" in cloud_acl("ingest")


def test_settings_need_exactly_one_mode(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[edge]\ndevice_id = "dr-jj-000001"\ngateway_id = "gw-jj-01"\n')
    with pytest.raises(ConfigError, match="exactly one"):
        load_edge_settings(path)


@pytest.mark.parametrize(
    ("mqtt", "edge", "needle"),
    [
        ('password = "changeme"', "", "placeholder"),
        ("", "[edge.defaults]\nmedian_window = 2", "odd"),
        ("", "replay_rate_per_s = 0", "replay_rate_per_s"),
        ('url = "http://x"', "", "mqtt://host"),
        ("bogus = 1", "", "bogus"),
        ("", 'district = "Jiao Jiang"', "pinyin"),
        ("", 'driver = "my driver"', "package.module:factory"),
    ],
)
def test_settings_refuse_bad_values_and_placeholder_secrets(
    tmp_path: Path, mqtt: str, edge: str, needle: str
) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(f'[mqtt]\n{mqtt}\n[edge]\ndevice_id = "dr-jj-000001"\n{edge}\n')
    with pytest.raises(ConfigError, match=needle) as info:
        load_edge_settings(path, environ={})
    assert "changeme" not in str(info.value)


def test_environment_overrides_the_file_and_secrets_stay_hidden(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n[edge]\ndevice_id = "dr-jj-000001"\n')
    environ = {
        "XIUHUA_MQTT__URL": "mqtts://127.0.0.1:8883",
        "XIUHUA_MQTT__PASSWORD": "s3cr3t-Pa55",
        "XIUHUA_EDGE__MAX_INFLIGHT": "7",
        "XIUHUA_EDGE__DEFAULTS__DEADBANDS": '{"level_m": 0.02}',
        "XIUHUA_INGEST__GROUP": "not ours: ignored",
        "PATH": "/usr/bin",
    }
    settings = load_edge_settings(path, environ=environ)
    assert (settings.mqtt.port, settings.mqtt.use_tls) == (8883, True)
    assert settings.edge.max_inflight == 7
    assert settings.edge.defaults.deadbands == {"level_m": 0.02}
    assert settings.mqtt.password == Secret("s3cr3t-Pa55")
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings.mqtt.password)


def test_the_cloud_acl_grants_what_every_cloud_function_needs() -> None:
    lines = set(cloud_acl("cloud").splitlines())
    assert {
        "user cloud",
        "topic read xh/v1/#",  # telemetry, events, statuses
        "topic read $SYS/broker/#",  # the ingester's broker-drop watch
        "topic write xh/v1/_deadletter/#",  # ingester's and alerting's dead letters
        "topic write xh/v1/_alert/#",
        "topic write xh/v1/_incident/#",
        "topic write xh/v1/+/+/+/cmd",
    } == lines
