"""Device kinds and their metrics: names (with units), units and physical ranges, in one place.

A *physical range* is what the quantity can possibly be, not what is normal: a value outside it is a
sensor or firmware fault. Alert thresholds live in the rule engine, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class DeviceKind(StrEnum):
    """The kinds of field device; the value is also the InfluxDB measurement name."""

    DRAIN = "drain"
    TOILET = "toilet"
    GARBAGE = "garbage"
    RAIN = "rain"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric a device kind reports."""

    name: str
    unit: str
    low: float
    high: float
    description: str
    resolution: float = 0.0
    """The smallest change the sensor resolves (its noise floor): a spike test never calls a
    deviation of a few resolutions a spike, however quiet the recent samples were."""

    def in_range(self, value: float) -> bool:
        """Whether ``value`` is physically possible for this metric."""
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A device kind: its metrics and the static attributes its registry rows carry."""

    kind: DeviceKind
    label_zh: str
    metrics: MappingProxyType[str, MetricSpec]
    attributes: tuple[str, ...]


def _metrics(*specs: MetricSpec) -> MappingProxyType[str, MetricSpec]:
    return MappingProxyType({s.name: s for s in specs})


_COMMON = (
    MetricSpec("battery_v", "V", 0.0, 30.0, "supply or battery voltage", resolution=0.05),
    MetricSpec("rssi_dbm", "dBm", -150.0, 0.0, "radio signal strength", resolution=2.0),
)

WASTE_CATEGORIES: Final = ("kitchen", "recyclable", "hazardous", "other")
"""GB/T 19095-2019: 厨余垃圾, 可回收物, 有害垃圾, 其他垃圾."""

DRAIN: Final = KindSpec(
    kind=DeviceKind.DRAIN,
    label_zh="排水管网节点",
    metrics=_metrics(
        MetricSpec(
            "level_m", "m", -0.5, 30.0, "water depth above the node's invert", resolution=0.05
        ),
        MetricSpec(
            "fill_ratio",
            "1",
            0.0,
            30.0,
            "water depth over pipe diameter; above 1 is surcharge",
            resolution=0.05,
        ),
        MetricSpec("flow_m3s", "m3/s", -100.0, 100.0, "flow in the outgoing pipe", resolution=0.02),
        MetricSpec(
            "velocity_ms", "m/s", -15.0, 15.0, "mean velocity in the outgoing pipe", resolution=0.05
        ),
        MetricSpec("cod_mgl", "mg/L", 0.0, 10_000.0, "chemical oxygen demand", resolution=10.0),
        MetricSpec("nh3n_mgl", "mg/L", 0.0, 1_000.0, "ammonia nitrogen", resolution=1.0),
        *_COMMON,
    ),
    attributes=("pipe_diameter_m", "invert_elev_m", "ground_elev_m"),
)

TOILET: Final = KindSpec(
    kind=DeviceKind.TOILET,
    label_zh="智慧公厕",
    metrics=_metrics(
        MetricSpec("occupied_stalls", "1", 0.0, 500.0, "stalls occupied now", resolution=1.0),
        MetricSpec(
            "footfall_count",
            "1",
            0.0,
            100_000.0,
            "people entering since the last report",
            resolution=1.0,
        ),
        MetricSpec(
            "nh3_mgm3", "mg/m3", 0.0, 200.0, "ammonia concentration (GB/T 17217)", resolution=0.05
        ),
        MetricSpec(
            "h2s_mgm3",
            "mg/m3",
            0.0,
            100.0,
            "hydrogen sulphide concentration (GB/T 17217)",
            resolution=0.002,
        ),
        MetricSpec("paper_pct", "%", 0.0, 100.0, "toilet paper remaining", resolution=1.0),
        MetricSpec("soap_pct", "%", 0.0, 100.0, "soap remaining", resolution=1.0),
        MetricSpec(
            "water_l", "L", 0.0, 1_000_000.0, "water used since the last report", resolution=1.0
        ),
        MetricSpec("temperature_c", "degC", -40.0, 85.0, "air temperature", resolution=0.5),
        MetricSpec("humidity_pct", "%", 0.0, 100.0, "relative humidity", resolution=1.0),
        MetricSpec(
            "fault_code",
            "1",
            0.0,
            65_535.0,
            "0 when healthy; otherwise a fault bitmask",
            resolution=1.0,
        ),
        *_COMMON,
    ),
    attributes=("stalls", "toilet_class"),
)

GARBAGE: Final = KindSpec(
    kind=DeviceKind.GARBAGE,
    label_zh="垃圾投放亭",
    metrics=_metrics(
        *(
            MetricSpec(
                f"fill_{c}_pct",
                "%",
                0.0,
                200.0,
                f"fill level of the {c} bin; above 100 overflows",
                resolution=2.0,
            )
            for c in WASTE_CATEGORIES
        ),
        MetricSpec("weight_kg", "kg", 0.0, 50_000.0, "total weight of waste held", resolution=5.0),
        MetricSpec(
            "temperature_c",
            "degC",
            -40.0,
            400.0,
            "temperature inside the station (fire)",
            resolution=0.5,
        ),
        *_COMMON,
    ),
    attributes=tuple(f"bin_{c}_l" for c in WASTE_CATEGORIES),
)

RAIN: Final = KindSpec(
    kind=DeviceKind.RAIN,
    label_zh="雨量站",
    metrics=_metrics(
        MetricSpec(
            "rain_mmh",
            "mm/h",
            0.0,
            500.0,
            "mean rain intensity over the last report",
            resolution=1.0,
        ),
        MetricSpec(
            "rain_day_mm",
            "mm",
            0.0,
            2000.0,
            "rain since local midnight (Asia/Shanghai)",
            resolution=0.2,
        ),
        *_COMMON,
    ),
    attributes=(),
)

KINDS: Final[MappingProxyType[DeviceKind, KindSpec]] = MappingProxyType(
    {DRAIN.kind: DRAIN, TOILET.kind: TOILET, GARBAGE.kind: GARBAGE, RAIN.kind: RAIN}
)


def kind_spec(kind: DeviceKind | str) -> KindSpec:
    """The spec of a kind, by enum or name; ``ValueError`` for an unknown kind."""
    return KINDS[DeviceKind(kind)]
