"""Hostile commands from the broker: each is refused with a reason; none stops the agent."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent import ConfigStore
from edge_agent._config import VersionedConfig
from telemetry_core.schema import MAX_TS_MS
from tests.unit.edge_agent.test_agent import BASE, _ramp, _rig

CMD = f"{BASE}/cmd"
TS = 1_764_000_000_000


def cmd(cmd_id: str = "c-1", op: str = "set_config", **kw: object) -> bytes:
    body: dict[str, object] = {"v": 1, "cmd_id": cmd_id, "ts": TS, "op": op}
    body.update(kw)
    return json.dumps(body).encode()


HOSTILE = [
    b"[" * 16_000,
    b'{"cmd_id":"deep","x":' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    b'{"v":1,"cmd_id":"deep2","ts":1,"op":"set_config","config":' + b'{"a":' * 3_000 + b"}",
    cmd("big-1", config={"interval_s": 10**400}),
    cmd("big-2", config={"median_window": 10**30}),
    cmd("big-3", config={"deadbands": {"level_m": 10**400}}),
    cmd("big-4", config={"thresholds": {"level_m": {"high": 10**400}}}),
    cmd("big-5", ts=MAX_TS_MS + 1),
    cmd("big-6", v=2**64),
    cmd("type-1", config={"thresholds": {"level_m": []}}),
    cmd("type-2", config={"deadbands": [1, 2]}),
    cmd("type-3", config=[]),
    cmd("type-4", op="format_disk"),
    cmd("nl-1\n"),
    b"\xff\xfe",
    b"",
    b"null",
]


def test_every_hostile_command_is_refused_and_the_agent_goes_on(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    rig.transport.connect()
    for payload in HOSTILE:
        rig.transport.command(CMD, payload)
    rig.transport.command(CMD, cmd("good-1", config={"interval_s": 2}))
    rig.run(3)
    acks = {a.cmd_id: a for a in rig.acks()}
    assert acks.pop("good-1").ok
    assert all(not a.ok and a.reason for a in acks.values())
    refusals = len(acks) + sum(e.type == "command_rejected" for e in rig.events())
    assert refusals == len(HOSTILE)
    assert rig.runtime.config.config.interval_s == 2
    assert rig.telemetry()


class ExplodingStore(ConfigStore):
    def save(self, versioned: VersionedConfig) -> None:
        raise RuntimeError(f"a bug nobody foresaw (v{versioned.version})")


def test_an_unforeseen_exception_is_an_internal_error_refusal(tmp_path: Path) -> None:
    rig = _rig(tmp_path, _ramp)
    runtime = rig.runtime
    runtime._store = ExplodingStore(runtime._store.path, runtime.topic.kind, runtime.config.config)
    rig.transport.connect()
    rig.transport.command(CMD, cmd("x-1", config={"interval_s": 2}))
    rig.transport.command(CMD, cmd("x-2", op="publish_status"))
    rig.run(2)
    acks = {a.cmd_id: a for a in rig.acks()}
    assert not acks["x-1"].ok
    assert acks["x-1"].reason.startswith("internal_error: RuntimeError: a bug nobody foresaw")
    assert acks["x-2"].ok
    assert runtime.config.version == 0
