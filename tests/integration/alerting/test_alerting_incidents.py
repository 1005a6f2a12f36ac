"""Incidents through the service, against a real broker: a storm on connected manholes.

A network file with a trunk and its branches; readings make five connected manholes warn within
minutes and one manhole elsewhere too. The service publishes one incident for the connected
five, rooted at the most downstream surcharged node (docs/alerting.md), listing every node and
device; only the transition that opened it notifies; each device keeps its own alert; and the
incident closes when its last alert clears.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import Device, write_registry_csv
from telemetry_core.schema import Incident
from tests.integration.alerting.kit import (
    MIN_MS,
    RULES,
    Collector,
    Publisher,
    reading,
    start_service,
    topic_of,
    write_config,
)
from xiuhua.services import Mosquitto, wait_until

pytestmark = pytest.mark.integration

# OUT <- T2 <- T1 <- B1        the trunk T2, T1 and a branch B1 into T1;
#              T1 <- C2 <- C1  a second branch C1, C2 into T1;
# OUT <- X                     X drains to the outfall on its own.
DOWNSTREAM = {"T2": "OUT", "T1": "T2", "B1": "T1", "C2": "T1", "C1": "C2", "X": "OUT",
              "OUT": None}  # fmt: skip
DEVICE = {node: f"dr-jj-{i:06d}" for i, node in enumerate(["T2", "T1", "B1", "C2", "C1", "X"])}
CONNECTED = ("B1", "C1", "C2", "T1", "T2")


def _network(path: Path) -> Path:
    nodes = [
        {"id": n, "district": "jiaojiang", "kind": "outfall" if down is None else "junction",
         "lat": 28.68, "lon": 121.44, "invert_elev_m": 1.0, "ground_elev_m": 3.0,
         "max_depth_m": 2.0, "pipe_diameter_m": 0.5, "downstream": down}
        for n, down in DOWNSTREAM.items()
    ]  # fmt: skip
    body = {"version": 1, "nodes": nodes, "devices": {d: n for n, d in DEVICE.items()},
            "rain_gauges": {}}  # fmt: skip
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def _fleet(path: Path) -> Path:
    devices = [Device(d, DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 60.0, {"swmm_node": n})
               for n, d in DEVICE.items()]  # fmt: skip
    write_registry_csv(devices, path)
    return path


def _storm(t0: int) -> list[tuple[str, bytes]]:
    """Within ten minutes: T1 surcharges first (red at once, test.fill), T2 below it runs 80 %
    full for five minutes (yellow, not surcharged), then the branches surcharge, then X."""
    fills = {"T1": [(0, 1.25)], "T2": [(m, 0.8) for m in range(6)], "C2": [(6, 1.1)],
             "B1": [(7, 1.05)], "C1": [(8, 1.15)], "X": [(9, 1.3)]}  # fmt: skip
    timed = sorted(
        (minute, node, fill) for node, series in fills.items() for minute, fill in series
    )
    return [(topic_of(DEVICE[node]), reading(DEVICE[node], seq, t0 + minute * MIN_MS, fill))
            for seq, (minute, node, fill) in enumerate(timed)]  # fmt: skip


def test_a_storm_on_connected_manholes_is_one_incident_rooted_downstream(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_config(
        tmp_path / "alerting.toml", _fleet(tmp_path / "fleet.csv"), mosquitto.url,
        tmp_path / "s.db", rules=(RULES,), network=str(_network(tmp_path / "network.json")),
    )  # fmt: skip
    collector = Collector(mosquitto.host, mosquitto.port)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    service = start_service(config)
    t0 = int(time.time() * 1000) - 30 * MIN_MS
    try:
        publisher.publish(_storm(t0))
        alerts = collector.wait_for(len(DEVICE))
        # Each device keeps its own alert: one transition, one episode each.
        assert sorted(t.device_id for t in alerts) == sorted(DEVICE.values())
        assert len({t.alert_id for t in alerts}) == len(DEVICE)
        by_node = {n: next(t for t in alerts if t.device_id == d) for n, d in DEVICE.items()}
        assert (by_node["T2"].tier_from, by_node["T2"].tier_to) == ("none", "yellow")
        assert {by_node[n].tier_to for n in ("T1", "B1", "C2", "C1", "X")} == {"red"}
        incident_id = by_node["T1"].incident_id
        assert incident_id is not None
        assert {by_node[n].incident_id for n in CONNECTED} == {incident_id}
        assert by_node["X"].incident_id not in (None, incident_id)
        # Notified once per incident: the transition that opened it, and X's own.
        assert [t.device_id for t in alerts if t.notify] == [DEVICE["T1"], DEVICE["X"]]
        wait_until(lambda: len(_units(collector, incident_id)) == len(CONNECTED)
                   and _units(collector, by_node["X"].incident_id) == ("X",),
                   message="the incident messages")  # fmt: skip
        # The storm's incident and X's, nothing else; each on its own topic.
        assert {i.id for _t, i in collector.incidents()} == {incident_id, by_node["X"].incident_id}
        assert {t for t, i in collector.incidents() if i.id == incident_id} == {
            f"xh/v1/_incident/jiaojiang/{incident_id}"
        }
        messages = [i for _t, i in collector.incidents() if i.id == incident_id]
        last = messages[-1]
        assert last.units == CONNECTED
        assert sorted(last.device_ids) == sorted(DEVICE[n] for n in CONNECTED)
        assert last.root_unit == "T1"  # the most downstream surcharged node (T2 only 80 % full)
        assert last.root_device_id == DEVICE["T1"]
        assert (last.tier, last.state, last.category) == ("red", "open", "overload")
        assert last.opened_ts == t0
        assert all(i.state == "open" and i.tier == "red" for i in messages)

        # The storm passes: every alert clears, and the incident closes.
        calm = [(topic_of(d), reading(d, 100, t0 + 20 * MIN_MS, 0.2)) for d in DEVICE.values()]
        publisher.publish(calm)
        wait_until(lambda: _state(collector, incident_id) == "closed",
                   message="the incident closed")  # fmt: skip
        cleared = collector.wait_for(2 * len(DEVICE))[len(DEVICE) :]
        assert sorted(t.device_id for t in cleared) == sorted(DEVICE.values())
        assert {t.tier_to for t in cleared} == {"none"}
    finally:
        service.stop()
        publisher.close()
        collector.close()


def _latest(collector: Collector, incident_id: str | None) -> Incident | None:
    found = [i for _t, i in collector.incidents() if i.id == incident_id]
    return found[-1] if found else None


def _units(collector: Collector, incident_id: str | None) -> tuple[str, ...]:
    """The nodes the latest message of an incident lists (none before its first message)."""
    last = _latest(collector, incident_id)
    return last.units if last is not None else ()


def _state(collector: Collector, incident_id: str | None) -> str | None:
    last = _latest(collector, incident_id)
    return last.state if last is not None else None
