"""A district's network outage in the live pipeline: a gateway of simulated devices, real broker.

The scenario (a file written here) cuts Luqiao's links for one simulated hour. ``xiuhua edge``
runs the gateway at 900x from a known ``sim_start``, so the outage is two to six wall seconds
after the gateway starts. During it nothing arrives from the cut devices while the others keep
flowing; afterwards every reading of the cut devices arrives, marked historical, in order.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent import LINK_DOWN_REASON
from firmware_sim import make_fleet
from telemetry_core.kinds import DeviceKind
from telemetry_core.registry import write_registry_csv
from telemetry_core.schema import Event, Status, Telemetry, decode
from tests.helpers import Mosquitto, wait_until
from tests.integration.edge_support import AgentProcess, Recorder, Seen

pytestmark = pytest.mark.integration

SPEED = 900.0
CUT_FROM_S, CUT_TO_S = 1800.0, 5400.0  # simulated seconds after sim_start
MARGIN_S = 5.0  # simulated seconds: a probe and its reading's timestamp are a few ms apart
CUT = [d.device_id for d in make_fleet("luqiao", DeviceKind.TOILET, 2, 1)]
FLEET = make_fleet("luqiao", DeviceKind.TOILET, 2, 1) + make_fleet(
    "jiaojiang", DeviceKind.GARBAGE, 2, 1
)
SCENARIO = """\
title: Luqiao cut for an hour
description: The cellular backhaul of Luqiao fails half an hour in, for one hour.
duration_h: 24
outages:
  - {districts: [luqiao], start_h: 0.5, duration_h: 1.0}
"""


def _config(tmp_path: Path, mqtt_url: str, sim_start_s: float) -> Path:
    fleet = tmp_path / "fleet.csv"
    write_registry_csv(FLEET, fleet)
    scenario = tmp_path / "luqiao_cut.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    start = datetime.fromtimestamp(sim_start_s, tz=UTC).isoformat()
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[mqtt]\nurl = "{mqtt_url}"\n[registry]\npath = "{fleet}"\n'
        f'[edge]\ngateway_id = "gw-link-01"\ndriver = "sim"\nscenario = "{scenario}"\n'
        f'sim_speed = {SPEED}\nsim_start = "{start}"\nstate_dir = "{tmp_path / "state"}"\n'
        "replay_rate_per_s = 200.0\n"
        "[edge.defaults]\ninterval_s = 60\nmax_silence_s = 900\nmedian_window = 1\n",
        encoding="utf-8",
    )
    return config


def _message(seen: Seen) -> Telemetry | Event:
    if seen.channel == "telemetry":
        return decode(seen.payload, Telemetry)
    return decode(seen.payload, Event)


def _of(recorder: Recorder, device_id: str) -> list[tuple[int, Telemetry | Event]]:
    """(arrival index, message) of a device's telemetry and events, in arrival order."""
    return [
        (i, _message(s))
        for i, s in enumerate(recorder.seen())
        if s.channel in ("telemetry", "event") and f"/{device_id}/" in s.topic
    ]


def _status_index(recorder: Recorder, device_id: str, state: str, after: int = -1) -> int:
    """Arrival index of the device's first status in ``state`` after index ``after``."""
    for i, seen in enumerate(recorder.seen()):
        if i > after and seen.channel == "status" and f"/{device_id}/" in seen.topic:
            status = decode(seen.payload, Status)
            if status.state == state and (state == "online" or status.reason == LINK_DOWN_REASON):
                return i
    raise AssertionError(f"no {state} status of {device_id} after message {after}")


def _replayed_and_live(recorder: Recorder, device_id: str, sim_start_s: float) -> bool:
    """Every seq of the device arrived, some historical, and a live one made after the cut."""
    messages = [m for _, m in _of(recorder, device_id)]
    seqs = {m.seq for m in messages}
    after_cut = any(
        not m.historical and m.ts / 1000 - sim_start_s > CUT_TO_S + MARGIN_S for m in messages
    )
    return after_cut and seqs == set(range(max(seqs, default=-1) + 1))


def _phase(message: Telemetry | Event, sim_start_s: float) -> str:
    """``before``, ``cut``, ``after`` the outage, or ``edge`` (too close to a boundary to say).

    Readings before it may be historical too: the gateway samples before its first connection.
    """
    rel_s = message.ts / 1000 - sim_start_s
    if CUT_FROM_S + MARGIN_S <= rel_s < CUT_TO_S - MARGIN_S:
        return "cut"
    if rel_s < CUT_FROM_S - MARGIN_S:
        return "before"
    return "after" if rel_s >= CUT_TO_S + MARGIN_S else "edge"


def _check_cut_device(recorder: Recorder, device_id: str, sim_start_s: float) -> tuple[int, int]:
    went = _status_index(recorder, device_id, "offline")
    back = _status_index(recorder, device_id, "online", after=went)
    messages = _of(recorder, device_id)
    # Nothing of this device reached the broker while its link was down.
    assert not [m.seq for i, m in messages if went < i < back]
    # Every reading arrived (one boot, no gap in seq) ...
    assert len({m.boot_id for _, m in messages}) == 1
    seqs = sorted({m.seq for _, m in messages})
    assert seqs == list(range(len(seqs)))
    # ... those made during the cut marked historical and replayed in order, the others live.
    held = [m for _, m in messages if _phase(m, sim_start_s) == "cut"]
    assert len(held) >= 20  # about 60 (one a minute for the hour); fewer if the host is slow
    assert all(m.historical for m in held)
    after = [m for _, m in messages if _phase(m, sim_start_s) == "after"]
    assert after, "no reading after the cut"
    assert not [m.seq for m in after if m.historical], "readings after the cut must go out live"
    replayed = [m.seq for _, m in messages if m.historical]
    assert replayed == sorted(replayed)
    return went, back


def _check_others_kept_flowing(recorder: Recorder, window: tuple[int, int]) -> None:
    others = [d.device_id for d in FLEET if d.device_id not in CUT]
    for device_id in others:
        during = [m for i, m in _of(recorder, device_id) if window[0] < i < window[1]]
        assert len(during) >= 10, f"{device_id} stopped during the other district's outage"
        assert not any(m.historical for m in during)


def test_a_cut_district_is_held_then_replayed_in_order(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sim_start_s = float(int(time.time()))
    recorder = Recorder(mosquitto.host, mosquitto.port, "xh/v1/#", "rec-link-outage")
    agent = AgentProcess(
        _config(tmp_path, mosquitto.url, sim_start_s),
        tmp_path / "gw.log",
        entry=("-m", "xiuhua", "edge", "--config"),
    )
    agent.start()
    try:
        wait_until(
            lambda: agent.check() or all(_replayed_and_live(recorder, d, sim_start_s) for d in CUT),
            timeout_s=90,
            message="the cut devices back, their backlog replayed and live again",
        )
    finally:
        agent.terminate()
        recorder.close()
    windows = [_check_cut_device(recorder, device_id, sim_start_s) for device_id in CUT]
    _check_others_kept_flowing(recorder, (max(w[0] for w in windows), min(w[1] for w in windows)))
    assert "Traceback" not in agent.log_text()
