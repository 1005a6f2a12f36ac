"""Settings of the alerting service: the shared sections plus an ``[alerting]`` section."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from telemetry_core.settings import Section, XiuhuaSettings
from telemetry_core.topics import check_district

_DAY_S = 86_400.0


class AlertingSection(Section):
    """The ``[alerting]`` section: partition, rules, state store, checkpoints, monitoring."""

    instance: str = Field("alerting-1", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Names this instance: its MQTT client id (persistent session) and its ``instance`` tag."""
    districts: tuple[str, ...] = ()
    """The partition this instance owns: it subscribes to these districts only, and no other
    instance may own any of them. Empty: every district (a single instance)."""
    rules: tuple[Path, ...] = ()
    """Rule files or directories; empty: the default rule set shipped with Xiuhua."""
    network: Path | None = None
    """The drainage network file (``network.json``) for predictions and incidents."""
    state_url: str = "sqlite:///alerting-state.sqlite"
    """SQLAlchemy URL of the state store (SQLite by default; PostgreSQL works the same)."""
    checkpoint_interval_s: float = Field(0.3, gt=0, le=60)
    """How often state is made durable; messages are acknowledged up to the last checkpoint.
    At least ten times what a snapshot takes (about 0.1 s for 10,000 drains here)."""
    tick_interval_s: float = Field(1.0, gt=0, le=300)
    """How often the engine is ticked (silent devices, reminders): at wall time once caught up,
    at the event time read so far while a backlog drains (``alerting._catchup``)."""
    catchup_quiet_s: float = Field(10.0, gt=0, le=3600)
    """Nothing received and nothing unacknowledged for this long: the service counts as caught
    up and ticks at wall time even if the last reading it read was old."""
    catchup_lateness_s: float = Field(0.0, ge=0, le=86_400)
    """While reading, tick this long (event time) behind the newest reading: the readings of a
    moment reach the service over a spread (a gateway's round, network jitter), and a device
    whose reading of that moment is still in flight is not silent. A simulated fleet running
    ``speed`` times faster than the clock needs about ``speed`` seconds."""
    silence_refresh_s: float = Field(5.0, gt=0, le=300)
    """How often the silences are read again from the state store: one added or expired with
    ``xiuhua alerting silence`` while the service runs is in force within this time."""
    receive_maximum: int = Field(50_000, ge=2, le=65_535)
    """MQTT v5 Receive Maximum: unacknowledged messages the broker may send us at once."""
    session_expiry_s: int = Field(86_400, ge=60)
    max_payload_bytes: int = Field(16_384, ge=256, le=1_048_576)
    max_future_s: float = Field(300.0, ge=0)
    """Readings stamped further ahead of wall time are refused (``ts_future``)."""
    deadletter_topic: str = "xh/v1/_deadletter/alerting"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65_535)
    """Prometheus metrics over HTTP; 0 turns the endpoint off."""
    stats_interval_s: float = Field(10.0, gt=0)
    """How often an ``alerting_stats`` message is published (the ingester stores it)."""
    retry_min_s: float = Field(0.2, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    max_unconfirmed: int = Field(10_000, ge=1)
    """Transitions published and not yet acknowledged by the broker before the consumer waits."""

    @field_validator("districts")
    @classmethod
    def _check_districts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for district in value:
            check_district(district)
        if len(set(value)) != len(value):
            raise ValueError("a district is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AlertingSection:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must not be below retry_min_s")
        return self


class AlertingSettings(XiuhuaSettings):
    """Settings of ``xiuhua alerting``: ``[mqtt] [influx] [registry] [log] [alerting]``."""

    alerting: AlertingSection = AlertingSection()
