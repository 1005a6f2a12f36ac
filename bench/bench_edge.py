"""Edge agent benchmark: prints figures, asserts nothing about speed.

1. One device sampling at 1 Hz (a real process against a real Mosquitto): RSS and CPU share,
   through both entry points: ``python -m edge_agent`` (the device entry) and ``xiuhua edge``.
2. Replay of a 100,000-message backlog: messages per second until every PUBACK is in.
3. One gateway process hosting 1,000 devices: RSS, CPU and message rate.

The devices read a light synthetic driver (a random walk, ``edge.driver =
"bench.bench_edge:walk_driver"``), not the simulator, so the figures are the agent's own cost.
Run ``python bench/bench_edge.py [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent import NewRow, Priority, Spool, build_agent, load_edge_settings, serve  # noqa: E402
from telemetry_core.clock import SystemClock  # noqa: E402
from telemetry_core.kinds import DeviceKind  # noqa: E402
from telemetry_core.logging import configure_logging  # noqa: E402
from telemetry_core.registry import Device, load_registry, write_registry_csv  # noqa: E402
from telemetry_core.schema import CONTRACT_VERSION, Telemetry, encode  # noqa: E402

if TYPE_CHECKING:
    # Not imported at run time: the child agent process must not pay for the services' imports.
    from xiuhua.services import Mosquitto

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class WalkDriver:
    """A drain node whose level does a random walk (every sample differs)."""

    def __init__(self, device_id: str) -> None:
        self._device_id = device_id
        self._level = 1.0
        self._rng = random.Random(device_id)

    @property
    def device_id(self) -> str:
        """The device read."""
        return self._device_id

    @property
    def kind(self) -> DeviceKind:
        """A drain node."""
        return DeviceKind.DRAIN

    def read(self, at_s: float) -> Mapping[str, float]:  # noqa: ARG002 - time-free walk
        """A level and a battery voltage."""
        self._level = max(0.0, self._level + self._rng.uniform(-0.05, 0.05))
        return {"level_m": round(self._level, 3), "battery_v": 3.6}


def walk_driver(device: Device, clock: object) -> WalkDriver:  # noqa: ARG001 - factory shape
    """The ``edge.driver = "bench.bench_edge:walk_driver"`` factory for ``xiuhua edge``."""
    return WalkDriver(device.device_id)


def child(config: str) -> None:
    """Run one agent (or gateway) from ``config`` until SIGTERM."""
    settings = load_edge_settings(Path(config))
    configure_logging(settings.log.level, json=settings.log.json_lines)
    if settings.registry.path is not None:
        devices = list(load_registry(settings.registry.path))
    else:
        device_id = settings.edge.device_id or "unset"
        devices = [Device(device_id, DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 1.0)]
    drivers = {d.device_id: WalkDriver(d.device_id) for d in devices}
    serve(build_agent(settings, devices, drivers, SystemClock()))


def _config(
    path: Path, url: str, state: Path, ident: str, fleet: Path | None, **edge: object
) -> Path:
    mode = "gateway_id" if fleet else "device_id"
    lines = ["[mqtt]", f'url = "{url}"', "[log]", 'level = "warning"', "[edge]"]
    lines += [f'{mode} = "{ident}"', f'state_dir = "{state}"']
    lines += [f"{k} = {v!r}" for k, v in edge.items() if k != "defaults"]
    if fleet:
        lines += ["[registry]", f'path = "{fleet}"']
    lines += ["[edge.defaults]", *(f"{k} = {v!r}" for k, v in dict(edge["defaults"]).items())]  # type: ignore[call-overload]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(argv: list[str], warmup_s: float, duration_s: float) -> tuple[float, float, float]:
    """(RSS MB at end, peak RSS MB, CPU % of one core) of a child process running ``argv``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        time.sleep(warmup_s)  # a benchmark, not a test: fixed windows are the measurement
        if proc.poll() is not None:
            raise SystemExit(f"{argv} exited with {proc.returncode}")
        cpu0, t0, peak = _cpu_s(proc.pid), time.monotonic(), 0.0
        while time.monotonic() - t0 < duration_s:
            time.sleep(1.0)
            peak = max(peak, _rss_mb(proc.pid))
        cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
        return _rss_mb(proc.pid), peak, cpu
    finally:
        proc.terminate()
        proc.wait(30)


def bench_one_agent(broker: Mosquitto, tmp: Path, duration_s: float) -> None:
    """One device at 1 Hz, every sample reported, through both entry points.

    ``xiuhua edge`` imports only its own subcommand, but typer 0.29 imports pydantic to coerce
    parameters, which the device entry avoids.
    """
    defaults = {"interval_s": 1.0, "max_silence_s": 60.0, "median_window": 3}
    entries = {
        "python -m edge_agent (device entry)": [sys.executable, "-m", "edge_agent"],
        "xiuhua edge (the CLI)": [sys.executable, "-m", "xiuhua", "edge"],
    }
    for n, (label, argv) in enumerate(entries.items()):
        cfg = _config(
            tmp / f"one{n}.toml",
            broker.url,
            tmp / f"one{n}",
            f"dr-jj-{n + 1:06d}",
            None,
            driver="bench.bench_edge:walk_driver",
            district="jiaojiang",
            kind="drain",
            defaults=defaults,
        )
        rss, peak, cpu = _measure([*argv, "--config", str(cfg)], 5.0, duration_s)
        print(
            f"one device @1 Hz, {label}, over {duration_s:.0f} s: RSS {rss:.1f} MB "
            f"(peak {peak:.1f}), CPU {cpu:.2f}% of a core  [goal < 40 MB, < 1%]"
        )


def bench_replay(broker: Mosquitto, tmp: Path, backlog: int) -> None:
    """Fill a spool with ``backlog`` readings offline, then time the replay until all PUBACKs."""
    state = tmp / "replay"
    spool = Spool(state / "spool.sqlite3")
    topic = "xh/v1/jiaojiang/drain/dr-jj-000009/telemetry"
    t0 = time.perf_counter()
    for start in range(0, backlog, 5000):
        rows = [
            NewRow(
                "dr-jj-000009",
                "telemetry",
                topic,
                Priority.ROUTINE,
                time.time(),
                encode(
                    Telemetry(
                        v=CONTRACT_VERSION,
                        device_id="dr-jj-000009",
                        ts=1_764_000_000_000 + i,
                        seq=i,
                        boot_id="bench",
                        readings={"level_m": i / 1000},
                    )
                ),
            )
            for i in range(start, min(backlog, start + 5000))
        ]
        spool.put_many(rows, time.time())
    fill_s = time.perf_counter() - t0
    spool.close()
    defaults = {"interval_s": 3600.0, "max_silence_s": 3600.0, "median_window": 1}
    cfg = _config(
        tmp / "replay.toml",
        broker.url,
        state,
        "dr-jj-000009",
        None,
        replay_rate_per_s=1e9,
        replay_burst=2000,
        max_inflight=1000,
        defaults=defaults,
    )
    settings = load_edge_settings(cfg)
    device = Device("dr-jj-000009", DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 1.0)
    agent = build_agent(
        settings, [device], {device.device_id: WalkDriver(device.device_id)}, SystemClock()
    )
    agent.start()
    t0, wait_s = time.perf_counter(), 0.0
    while agent.backlog > 1 and time.perf_counter() - t0 < 600:
        wait_s = agent.turn(min(wait_s, 0.05))
    replay_s = time.perf_counter() - t0
    left = agent.backlog
    agent.shutdown()
    print(
        f"backlog of {backlog:,}: spooled at {backlog / fill_s:,.0f} msg/s (FULL sync, 5k per "
        f"commit); replayed and PUBACKed in {replay_s:.1f} s = {backlog / replay_s:,.0f} msg/s "
        f"(unthrottled; {left} left)"
    )


def bench_gateway(broker: Mosquitto, tmp: Path, devices: int, duration_s: float) -> None:
    """One gateway process hosting ``devices`` devices sampling every 10 s."""
    fleet = [
        Device(f"dr-jj-{n:06d}", DeviceKind.DRAIN, "jiaojiang", 28.68, 121.44, 10.0)
        for n in range(devices)
    ]
    path = tmp / "fleet.csv"
    write_registry_csv(fleet, path)
    defaults = {"interval_s": 10.0, "max_silence_s": 600.0, "median_window": 3}
    cfg = _config(
        tmp / "gw.toml",
        broker.url,
        tmp / "gw",
        "gw-jj-01",
        path,
        defaults=defaults,
        max_inflight=1000,
    )
    rss, peak, cpu = _measure([sys.executable, __file__, "--child", str(cfg)], 10.0, duration_s)
    print(
        f"gateway with {devices:,} devices @0.1 Hz ({devices / 10:,.0f} msg/s) over "
        f"{duration_s:.0f} s: RSS {rss:.1f} MB (peak {peak:.1f}), CPU {cpu:.1f}% of a core"
    )


def main() -> None:
    """Run the three benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter windows, smaller backlog")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp_dir:
        tmp = Path(tmp_dir)
        from xiuhua.services import Mosquitto  # parent process only

        broker = Mosquitto(tmp / "broker")
        broker.start()
        try:
            bench_one_agent(broker, tmp, 20.0 if args.quick else 60.0)
            bench_replay(broker, tmp, 20_000 if args.quick else 100_000)
            bench_gateway(broker, tmp, 1000, 20.0 if args.quick else 60.0)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
