"""Agent config: validation, merge of remote changes, atomic persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import (
    AgentConfig,
    AgentConfigError,
    ConfigStore,
    VersionedConfig,
    merge_config,
    parse_config,
)
from telemetry_core.kinds import DeviceKind

DRAIN = DeviceKind.DRAIN


def test_merge_replaces_named_keys_and_keeps_the_rest() -> None:
    current = AgentConfig(interval_s=60, deadbands={"level_m": 0.01})
    merged = merge_config(current, {"interval_s": 30, "deadbands": {"flow_m3s": 0.1}}, DRAIN)
    assert merged.interval_s == 30
    assert merged.deadbands == {"flow_m3s": 0.1}
    assert merged.max_silence_s == current.max_silence_s


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"interval_s": -1}, "interval_s"),
        ({"median_window": 4}, "odd"),
        ({"max_silence_s": 1}, "max_silence_s"),
        ({"deadbands": {"nh3_mgm3": 0.1}}, "unknown metrics"),
        ({"thresholds": {"level_m": {"high": 1, "low": 2}}}, "below high"),
        ({"thresholds": {"level_m": {}}}, "high, low"),
        ({"bogus": 1}, "bogus"),
        ({}, "at least one key"),
    ],
)
def test_bad_changes_are_refused_with_a_reason(patch: dict[str, object], needle: str) -> None:
    with pytest.raises(AgentConfigError, match=needle):
        merge_config(AgentConfig(), patch, DRAIN)


def test_store_round_trip_and_defaults(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c" / "dev.json", DRAIN, AgentConfig(interval_s=5))
    assert store.load() == VersionedConfig(AgentConfig(interval_s=5), 0)
    saved = VersionedConfig(parse_config({"interval_s": 2, "max_silence_s": 4}, DRAIN), 3, "cmd-9")
    store.save(saved)
    assert ConfigStore(store.path, DRAIN, AgentConfig()).load() == saved
    assert not store.path.with_suffix(".json.tmp").exists()


def test_corrupt_store_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AgentConfigError, match="unreadable"):
        ConfigStore(path, DRAIN, AgentConfig()).load()
