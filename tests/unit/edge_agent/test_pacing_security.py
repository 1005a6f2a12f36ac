"""Back-off, token bucket, ACL text and settings validation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edge_agent import Backoff, EdgeSettings, TokenBucket, cloud_acl, device_acl, gateway_acl
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device
from telemetry_core.settings import load_settings


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
    assert "topic write xh/v1/jiaojiang/drain/dr-jj-000003/event" in text
    assert "topic read xh/v1/jiaojiang/drain/dr-jj-000003/cmd" in text
    assert "topic read xh/v1/#" in cloud_acl("ingest")


def test_settings_need_exactly_one_mode(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[edge]\ndevice_id = "dr-jj-000001"\ngateway_id = "gw-jj-01"\n')
    with pytest.raises(ConfigError, match="exactly one"):
        load_settings(EdgeSettings, path)


def test_settings_refuse_bad_defaults_and_placeholder_secrets(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(
        '[mqtt]\npassword = "changeme"\n[edge]\ndevice_id = "dr-jj-000001"\n'
        "[edge.defaults]\nmedian_window = 2\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(EdgeSettings, path)
    assert "placeholder" in str(info.value)
    assert "odd" in str(info.value)
    assert "changeme" not in str(info.value)
