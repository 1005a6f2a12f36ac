"""Settings of ``xiuhua edge``: the shared sections plus ``[edge]``.

One device per process names ``device_id`` (its district and kind come from the fleet file in
``[registry]`` or from ``district``/``kind`` here). Gateway mode names ``gateway_id`` and hosts
every device of the fleet file (optionally one district) over one MQTT connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge_agent._config import AgentConfig
from edge_agent._spool import SpoolLimits
from telemetry_core.kinds import DeviceKind
from telemetry_core.settings import Section, XiuhuaSettings
from telemetry_core.topics import check_device_id, check_district


class EdgeSection(Section):
    """The ``[edge]`` section."""

    device_id: str | None = None
    gateway_id: str | None = None
    district: str | None = None
    kind: DeviceKind | None = None
    firmware: str = "xiuhua-edge/0.1.0"
    driver: Literal["sim"] = "sim"
    scenario: str = "normal_day"
    seed: int = 1
    sim_fleet_size: int = Field(default=100, ge=1, le=100_000)
    sim_speed: float = Field(default=1.0, gt=0.0, le=10_000.0)
    state_dir: Path = Path("edge-state")
    spool_max_rows: int = Field(default=1_000_000, ge=1)
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    spool_max_age_s: float = Field(default=30 * 86_400.0, gt=0.0)
    spool_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    replay_rate_per_s: float = Field(default=100.0, gt=0.0)
    replay_burst: int = Field(default=100, ge=1)
    max_inflight: int = Field(default=100, ge=1, le=10_000)
    session_expiry_s: int = Field(default=7 * 86_400, ge=0)
    reconnect_min_s: float = Field(default=0.5, gt=0.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0)
    defaults: AgentConfig = AgentConfig()

    @model_validator(mode="after")
    def _check_mode(self) -> EdgeSection:
        if (self.device_id is None) == (self.gateway_id is None):
            raise ValueError("set exactly one of edge.device_id (one device) or edge.gateway_id")
        for ident in (self.device_id, self.gateway_id):
            if ident is not None:
                check_device_id(ident)
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.district is not None:
            check_district(self.district)
        return self

    @property
    def spool_path(self) -> Path:
        """The SQLite spool file inside ``state_dir``."""
        return self.state_dir / "spool.sqlite3"

    @property
    def spool_limits(self) -> SpoolLimits:
        """The spool bounds."""
        return SpoolLimits(self.spool_max_rows, self.spool_max_bytes, self.spool_max_age_s)

    def config_path(self, device_id: str) -> Path:
        """Where a device's remote-changeable config is persisted."""
        return self.state_dir / "config" / f"{device_id}.json"


class EdgeSettings(XiuhuaSettings):
    """Everything ``xiuhua edge`` reads: ``[mqtt]``, ``[registry]``, ``[log]`` and ``[edge]``."""

    edge: EdgeSection
