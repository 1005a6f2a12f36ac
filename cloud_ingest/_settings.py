"""Settings of the ingester: the shared sections plus an ``[ingest]`` section."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from telemetry_core.partition import Partition
from telemetry_core.settings import Section, XiuhuaSettings

_DAY_S = 86_400.0
_INSTANCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class IngestSection(Section):
    """The ``[ingest]`` section: consumer group, batching, validation policy, monitoring."""

    group: str = Field("xiuhua-ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    instance: str = Field("ingest-1", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Names this instance: its MQTT client id (persistent session) and its ``instance`` tag."""
    districts: tuple[str, ...] = ()
    """The districts this instance consumes (its partition); empty: every district. Run one
    instance per disjoint set of districts to scale out (see docs/ingest.md)."""
    partitions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """The whole plan, ``instance -> districts``, in one file shared by every instance: this
    instance takes ``partitions[instance]``; overlaps and uncovered districts are refused."""
    shared_subscription: bool = False
    """``$share/<group>/...`` instead of a partition. NOT lossless: Mosquitto 2.0.11 does not
    restore a shared subscription from persistence, so what devices publish between a broker
    restart and this instance's re-subscription (its reconnect delay, up to ``retry_max_s``)
    is acknowledged to them and dropped. Logged as a warning at start."""
    batch_size: int = Field(5000, ge=1, le=20_000)
    batch_interval_s: float = Field(0.2, gt=0, le=60)
    receive_maximum: int = Field(20_000, ge=2, le=65_535)
    """MQTT v5 Receive Maximum: unacknowledged messages the broker may send us at once."""
    session_expiry_s: int = Field(86_400, ge=60)
    max_payload_bytes: int = Field(16_384, ge=256, le=1_048_576)
    max_future_s: float = Field(300.0, ge=0)
    max_past_s: float = Field(7 * _DAY_S, gt=0)
    max_historical_past_s: float = Field(30 * _DAY_S, gt=0)
    range_policy: Literal["flag", "reject"] = "flag"
    deadletter_topic: str = "xh/v1/_deadletter/ingest"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65_535)
    """Prometheus metrics over HTTP; 0 turns the endpoint off."""
    stats_interval_s: float = Field(10.0, gt=0)
    watch_broker_drops: bool = True
    """Subscribe to Mosquitto's ``$SYS`` drop counter (needs read access to ``$SYS/broker/#``)."""
    retry_min_s: float = Field(0.2, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    pending_batches: int = Field(2, ge=1, le=16)

    @model_validator(mode="after")
    def _consistent(self) -> IngestSection:
        # With manual acks the broker stops sending once Receive Maximum messages are
        # unacknowledged; below one batch plus the one being written, batches only ever
        # close on the timer and throughput collapses.
        if self.receive_maximum < 2 * self.batch_size:
            raise ValueError(
                f"receive_maximum {self.receive_maximum} must be at least 2 x batch_size"
                f" ({2 * self.batch_size})"
            )
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must not be below retry_min_s")
        self._check_partitions()
        return self

    def _check_partitions(self) -> None:
        for name, districts in {"": self.districts, **self.partitions}.items():
            try:
                Partition(districts)
            except ValueError as exc:
                raise ValueError(f"{'partitions.' + name if name else 'districts'}: {exc}") from exc
        bad = sorted(n for n in self.partitions if not _INSTANCE_RE.fullmatch(n))
        if bad:
            raise ValueError(
                f"partitions: {bad[0]!r} is not an instance name (1-64 of A-Za-z0-9_-)"
            )
        if self.partitions and self.districts:
            raise ValueError("set districts or partitions, not both")
        if self.partitions and self.instance not in self.partitions:
            raise ValueError(
                f"instance {self.instance!r} has no entry in partitions"
                f" (entries: {', '.join(sorted(self.partitions))})"
            )

    def partition(self) -> Partition:
        """The districts this instance consumes."""
        if self.partitions:
            return Partition(self.partitions[self.instance])
        return Partition(self.districts)

    def plan(self) -> dict[str, Partition]:
        """Every instance's partition as far as this file knows: the whole plan, or just us."""
        if self.partitions:
            return {name: Partition(d) for name, d in self.partitions.items()}
        return {self.instance: Partition(self.districts)}


class IngestSettings(XiuhuaSettings):
    """Settings of ``xiuhua ingest``: ``[mqtt] [influx] [registry] [log] [ingest]``."""

    ingest: IngestSection = IngestSection()
