"""The ingester's partition settings: checked against the fleet and the plan at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from cloud_ingest import IngestSection, IngestSettings
from cloud_ingest._app import log_start, partition_of, stale_subscriptions
from telemetry_core.errors import ConfigError
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, Registry

FLEET = Registry(
    [
        Device(f"dr-{d[:2]}-{i}", DeviceKind.DRAIN, d, 28.6, 121.4, 60.0, {})
        for i, d in enumerate(("jiaojiang", "huangyan", "luqiao"))
    ]
)


def test_a_plan_covering_the_fleet_once_gives_each_instance_its_districts() -> None:
    plan = {"a": ("jiaojiang",), "b": ("huangyan", "luqiao")}
    assert partition_of(IngestSection(instance="b", partitions=plan), FLEET).districts == (
        "huangyan", "luqiao",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("section", "match"),
    [
        (IngestSection(districts=("wenling",)), r"ingest.districts: district 'wenling' is not"),
        (IngestSection(instance="a", partitions={"a": ("jiaojiang", "luqiao"),
                                                 "b": ("luqiao", "huangyan")}),
         r"'luqiao' belongs to a and b"),
        (IngestSection(instance="a", partitions={"a": ("jiaojiang",), "b": ("luqiao",)}),
         r"no instance takes huangyan"),
        (IngestSection(instance="a", partitions={"a": ("jiaojiang",), "b": ("luqiao", "huangjan")}),
         r"ingest.partitions.b: .*did you mean 'huangyan'"),
    ],
)  # fmt: skip
def test_a_bad_plan_is_refused_naming_the_problem(section: IngestSection, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        partition_of(section, FLEET)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"districts": ("luqiao", "luqiao")}, "districts: district listed twice"),
        ({"districts": ("Luqiao",)}, "districts: district 'Luqiao'"),
        ({"districts": ("luqiao",), "partitions": {"ingest-1": ("luqiao",)}}, "not both"),
        ({"instance": "c", "partitions": {"a": ("luqiao",)}}, "instance 'c' has no entry"),
        ({"partitions": {"ingest-1": ("luqiao",), "b c": ("wenling",)}}, "'b c' is not an inst"),
    ],
)
def test_partition_settings_are_refused_when_loaded(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        IngestSection.model_validate(fields)


def test_start_log_names_broker_database_fleet_and_warns_about_share_and_idle_districts() -> None:
    settings = IngestSettings.model_validate(
        {
            "ingest": {"districts": ["luqiao"], "shared_subscription": True},
            "registry": {"path": "fleet.csv"},
        }
    )
    with capture_logs() as logs:
        log_start(settings, FLEET, settings.ingest.partition())
    started = next(e for e in logs if e["event"] == "ingest_configured")
    assert started["mqtt"] == "mqtt://127.0.0.1:1883"
    assert (started["influx"], started["database"]) == ("http://127.0.0.1:8086", "xiuhua")
    assert (started["registry"], started["devices"], started["districts"]) == (
        "fleet.csv",
        3,
        "luqiao",
    )
    warnings = {e["event"]: e for e in logs if e["log_level"] == "warning"}
    assert "lost" in warnings["shared_subscription_loses_on_broker_restart"]["hint"]
    assert warnings["districts_not_consumed"]["districts"] == "huangyan,jiaojiang"


def test_the_default_start_log_has_no_warning() -> None:
    settings = IngestSettings()
    with capture_logs() as logs:
        log_start(settings, FLEET, settings.ingest.partition())
    assert [e["log_level"] for e in logs] == ["info"]


def test_stale_subscriptions_drop_the_old_layouts_but_not_ours() -> None:
    stale = stale_subscriptions(IngestSection(districts=("luqiao",)), FLEET)
    assert "xh/v1/+/+/+/telemetry" in stale
    assert "$share/xiuhua-ingest/xh/v1/+/+/+/status" in stale
    assert not any(f.startswith("xh/v1/luqiao/") for f in stale)
