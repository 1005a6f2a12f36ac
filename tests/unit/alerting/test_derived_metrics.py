"""Metrics derived from the registry's attributes: each formula on a device of its kind."""

from __future__ import annotations

import pytest

from alerting._derived import DERIVED, extractor, metric_range
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, toilet

BIN = Device(
    "gs-jj-000001", DeviceKind.GARBAGE, "jiaojiang", 28.66, 121.42, 60.0,
    {"bin_kitchen_l": 480.0, "bin_recyclable_l": 240.0, "bin_hazardous_l": 60.0,
     "bin_other_l": 720.0},
)  # fmt: skip

CASES = [
    # (device, metric, reading, value): drain() is a 2.0 m manhole on a 0.5 m pipe
    (drain(), "depth_below_ground_m", {"level_m": 0.5}, 1.5),
    (drain(), "freeboard_m", {"level_m": 0.6}, -0.1),
    (drain(), "manhole_fill", {"level_m": 1.0}, 0.5),
    (drain(), "pipe_fill", {"level_m": 0.6}, 1.2),
    (toilet(), "occupancy_ratio", {"occupied_stalls": 6.0}, 0.75),
    (toilet(), "fault_blocked_pan", {"fault_code": 5.0}, 1.0),
    (toilet(), "fault_leak", {"fault_code": 5.0}, 0.0),
    (toilet(), "fault_fan", {"fault_code": 5.0}, 1.0),
    (BIN, "fill_max_pct", {"fill_kitchen_pct": 30.0, "fill_other_pct": 95.0}, 95.0),
    (BIN, "free_kitchen_l", {"fill_kitchen_pct": 75.0}, 120.0),
    (BIN, "free_other_l", {"fill_other_pct": 110.0}, -72.0),
    (BIN, "free_hazardous_l", {"fill_hazardous_pct": 0.0}, 60.0),
    (BIN, "free_recyclable_l", {"fill_recyclable_pct": 50.0}, 120.0),
]


@pytest.mark.parametrize(("device", "metric", "reading", "value"), CASES)
def test_each_derived_metric_computes_its_formula(
    device: Device, metric: str, reading: dict[str, float], value: float
) -> None:
    fn = extractor(device.kind.value, metric, device)
    assert fn is not None
    assert fn(reading) == pytest.approx(value)
    assert fn({}) is None  # the metric it needs is missing: no value, not a wrong one
    bounds = metric_range(device.kind.value, metric)
    assert bounds is not None
    assert bounds[0] <= value <= bounds[1]


def test_every_derived_metric_has_a_case() -> None:
    covered = {(d.kind.value, m) for d, m, _, _ in CASES}
    assert covered == {(k, m) for k, metrics in DERIVED.items() for m in metrics}


def test_a_device_without_the_attributes_a_metric_needs_is_skipped() -> None:
    bare = Device("dr-jj-000009", DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 60.0, {})
    assert extractor("drain", "pipe_fill", bare) is None
    assert extractor("drain", "depth_below_ground_m", bare) is None
