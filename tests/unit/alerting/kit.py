"""Small builders for the engine's unit tests: devices, readings, rules files, a network."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import msgspec

from alerting import Engine, RuleSet, load_rules, network_from_dict
from alerting._network import Network
from alerting._state import DECODER, StateDelta
from telemetry_core import AlertTransition, Channel, DeviceKind, Status, Telemetry, Topic
from telemetry_core.registry import Device

T0_MS = 1_786_291_200_000
"""2026-08-10 00:00 +08:00, the simulator's default start."""
MIN_MS = 60_000


def drain(device_id: str = "dr-jj-000001", node: str = "jj-J001", **attrs: float) -> Device:
    """A drain device: 0.5 m pipe, 2.0 m deep manhole."""
    base: dict[str, float | str] = {
        "pipe_diameter_m": 0.5, "invert_elev_m": 1.0, "ground_elev_m": 3.0, "swmm_node": node,
    }  # fmt: skip
    base.update(attrs)
    return Device(device_id, DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 60.0, base)


def toilet(device_id: str = "wc-jj-000001", toilet_class: float = 1.0) -> Device:
    """A toilet of the given class with 8 stalls."""
    attrs: dict[str, float | str] = {"stalls": 8.0, "toilet_class": toilet_class}
    return Device(device_id, DeviceKind.TOILET, "jiaojiang", 28.66, 121.42, 60.0, attrs)


def rules(tmp_path: Path, text: str, name: str = "rules.yaml") -> RuleSet:
    """Write ``text`` (dedented) as a rules file and load it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_rules(path)


def reading(
    device: Device, minute: float, historical: bool = False,
    quality: dict[str, str] | None = None, **values: float,
) -> tuple[Topic, Telemetry]:  # fmt: skip
    """A telemetry message ``minute`` minutes after ``T0_MS``."""
    return message(device, minute, values, historical=historical, quality=quality)


def message(
    device: Device, minute: float, values: dict[str, float], *, historical: bool = False,
    quality: dict[str, str] | None = None,
) -> tuple[Topic, Telemetry]:  # fmt: skip
    """:func:`reading` with the values as a mapping."""
    topic = Topic(device.district, device.kind, device.device_id, Channel.TELEMETRY)
    msg = Telemetry(
        v=1, device_id=device.device_id, ts=T0_MS + int(minute * MIN_MS), seq=int(minute),
        boot_id="b1", readings=values, quality=quality, historical=historical,
    )  # fmt: skip
    return topic, msg


def status(device: Device, minute: float, state: str) -> tuple[Topic, Status]:
    """A status message (birth or last will)."""
    topic = Topic(device.district, device.kind, device.device_id, Channel.STATUS)
    msg = Status(v=1, device_id=device.device_id, ts=T0_MS + int(minute * MIN_MS), boot_id="b1",
                 state="online" if state == "online" else "offline")  # fmt: skip
    return topic, msg


def feed(
    engine: Engine, device: Device, series: Iterable[tuple[float, dict[str, float]]]
) -> list[AlertTransition]:
    """Feed ``(minute, readings)`` pairs; every transition, in order."""
    out: list[AlertTransition] = []
    for minute, values in series:
        out += engine.on_telemetry(*message(device, minute, values))
    return out


def tiers(transitions: Iterable[AlertTransition]) -> list[tuple[str, str]]:
    """``(tier_from, tier_to)`` of each transition."""
    return [(t.tier_from, t.tier_to) for t in transitions]


def chain_network(*nodes: str, district: str = "jiaojiang") -> Network:
    """A line of junctions draining one into the next, the last into an outfall ``OUT``."""
    items = [
        {"id": n, "district": district, "kind": "junction", "lat": 28.68, "lon": 121.44 + i * 1e-3,
         "invert_elev_m": 1.0, "ground_elev_m": 3.0, "max_depth_m": 2.0, "pipe_diameter_m": 0.5,
         "downstream": nodes[i + 1] if i + 1 < len(nodes) else "OUT"}
        for i, n in enumerate(nodes)
    ]  # fmt: skip
    outfall = {"id": "OUT", "district": district, "kind": "outfall", "lat": 28.68, "lon": 121.5,
               "invert_elev_m": 0.5, "ground_elev_m": 2.0, "downstream": None}  # fmt: skip
    items.append(outfall)
    return network_from_dict({"version": 1, "nodes": items, "devices": {}, "rain_gauges": {}})


def apply(store: dict[str, bytes], delta: StateDelta) -> None:
    """What a store does with a delta."""
    if delta.full:
        store.clear()
    for key in delta.deleted:
        store.pop(key, None)
    store.update(delta.parts)


CANONICAL = msgspec.msgpack.Encoder(order="sorted")


def same_state(a: Engine, b: Engine) -> bool:
    """The two engines' whole states are equal, bit for bit (NaN included) once dict keys are
    sorted: the order of insertion may differ."""
    return _canonical(a) == _canonical(b)


def _canonical(engine: Engine) -> bytes:
    return CANONICAL.encode(DECODER.decode(engine.snapshot()))
