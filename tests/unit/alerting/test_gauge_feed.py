"""A rain gauge's every reading enters the rain window, whatever rules the gauge itself has.

Regression: the engine fed a device's rain through the same arming as its fit windows, so a rain
rule that fits a trend (``rate``/``predict``) and is gated above some intensity left the gauge's
dry readings out of the window that drains' ``rain`` conditions, the nowcast and the forecast
read. A five-minute shower then looked like half an hour of it.
"""

from __future__ import annotations

from pathlib import Path

from alerting import Engine, network_from_dict
from telemetry_core import DeviceKind
from telemetry_core.registry import Device
from tests.unit.alerting.kit import drain, feed, rules, tiers

GAUGE = Device("rg-jj-000001", DeviceKind.RAIN, "jiaojiang", 28.68, 121.44, 60.0, {})
RULES = """
version: 1
rules:
  - name: rain.flat
    kind: rain
    category: device
    metric: rain_mmh
    tiers:
      - tier: yellow
        raise:
          all:
            - {at_least: 10}
            - {rate: {above_per_h: -0.001, window: 30m, min_points: 20}}
            - {rate: {below_per_h: 0.001, window: 30m, min_points: 20}}
        for: 30m
  - name: drain.wet
    kind: drain
    category: overload
    metric: fill_ratio
    tiers:
      - tier: yellow
        raise:
          all:
            - {above: 0.5}
            - {rain: {above_mmh: 20, over: 30m, nearest: 1}}
"""


def test_dry_readings_of_a_gauge_with_a_fitted_rule_still_count(tmp_path: Path) -> None:
    manhole = drain()
    network = network_from_dict({
        "version": 1, "nodes": [], "devices": {},
        "rain_gauges": {GAUGE.device_id: {"lat": GAUGE.lat, "lon": GAUGE.lon}},
    })  # fmt: skip
    engine = Engine(rules(tmp_path, RULES), [GAUGE, manhole], network)
    shower = [(m, {"rain_mmh": 40.0}) for m in range(5)]
    dry = [(m, {"rain_mmh": 0.0}) for m in range(5, 30)]
    feed(engine, GAUGE, shower + dry)
    # 5 min of 40 mm/h in the last 30: a mean of about 7 mm/h, not a rainstorm
    assert tiers(feed(engine, manhole, [(29.5, {"fill_ratio": 0.8})])) == []
    # and while it rains on, the drain sees it
    feed(engine, GAUGE, [(m, {"rain_mmh": 40.0}) for m in range(30, 60)])
    assert tiers(feed(engine, manhole, [(59.5, {"fill_ratio": 0.8})])) == [("none", "yellow")]
