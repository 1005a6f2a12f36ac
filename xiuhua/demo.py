"""``xiuhua demo``: the whole pipeline on this machine, with a live count of readings stored.

Starts Mosquitto and InfluxDB as child processes, writes a fleet file for one district, runs the
cloud ingester and an edge gateway hosting simulated devices (as the same ``xiuhua ingest`` and
``xiuhua edge`` commands an operator would run), shows readings landing in InfluxDB as they
arrive, then drains and stops everything and prints a summary read back with InfluxQL.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from telemetry_core.errors import ServiceError
from telemetry_core.kinds import DeviceKind
from telemetry_core.logging import configure_logging
from xiuhua.services import InfluxDB, Mosquitto
from xiuhua.watch import TelemetryWatch

DATABASE = "xiuhua"
KINDS = tuple(k.value for k in DeviceKind)


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """What the demo runs: where, how many devices, which scenario, how fast, for how long."""

    district: str
    devices: int
    scenario: str
    speed: float
    duration_s: float
    seed: int


class ChildProcess:
    """A ``xiuhua`` subcommand run as a child process, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL if it will not go; the exit code."""
        if self.alive():
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        return self._proc.returncode

    def tail(self, lines: int = 20) -> str:
        """The last lines of its output."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _xiuhua(*args: str) -> list[str]:
    return [sys.executable, "-m", "xiuhua", *args]


def _write_configs(work: Path, plan: DemoPlan, mqtt_url: str, influx_url: str) -> tuple[Path, Path]:
    fleet = work / "fleet.csv"
    common = (
        f'[mqtt]\nurl = "{mqtt_url}"\n\n[registry]\npath = "{fleet}"\n\n'
        '[log]\nlevel = "warning"\n\n'
    )
    ingest = work / "ingest.toml"
    ingest.write_text(
        common + f'[influx]\nurl = "{influx_url}"\ndatabase = "{DATABASE}"\n\n'
        '[ingest]\ninstance = "demo-ingest-1"\nstats_interval_s = 5.0\n'
        # Simulated time runs ahead of the wall clock by design; see _sim_start_s.
        f"max_future_s = {plan.duration_s * plan.speed + 600:.0f}\n",
        encoding="utf-8",
    )
    edge = work / "edge.toml"
    edge.write_text(
        common + f'[edge]\ngateway_id = "gw-demo-{plan.district}"\n'
        f'scenario = "{plan.scenario}"\nseed = {plan.seed}\nsim_speed = {plan.speed}\n'
        f'state_dir = "{work / "edge-state"}"\n',
        encoding="utf-8",
    )
    return ingest, edge


def _write_fleet(work: Path, plan: DemoPlan) -> int:
    from firmware_sim import make_fleet
    from telemetry_core.registry import write_registry_csv

    devices = make_fleet(plan.district, None, plan.devices, plan.seed)
    write_registry_csv(devices, work / "fleet.csv")
    return len(devices)


def stored_counts(influx: InfluxDB) -> dict[str, int]:
    """Readings stored per kind, and rejected messages, read back with InfluxQL."""
    counts = {kind: influx.count(kind, DATABASE, "seq") for kind in KINDS}
    counts["rejected"] = influx.count("ingest_rejects", DATABASE)
    return counts


def _progress_line(elapsed_s: float, counts: Mapping[str, int], rate: float) -> str:
    total = sum(counts[k] for k in KINDS)
    per_kind = " · ".join(f"{k} {counts[k]:,}" for k in KINDS)
    return (
        f"  {elapsed_s:5.0f} s   stored {total:7,} readings ({per_kind})   "
        f"rejected {counts['rejected']}   {rate:6.1f}/s"
    )


def _watch(influx: InfluxDB, children: list[ChildProcess], duration_s: float) -> dict[str, int]:
    started = time.monotonic()
    last_total, last_t = 0, started
    counts = stored_counts(influx)
    tty = sys.stdout.isatty()
    while (now := time.monotonic()) - started < duration_s:
        _check_alive(children)
        counts = stored_counts(influx)
        total = sum(counts[k] for k in KINDS)
        rate = (total - last_total) / max(now - last_t, 1e-3)
        last_total, last_t = total, now
        line = _progress_line(now - started, counts, rate)
        typer.echo(f"\r{line}" if tty else line, nl=not tty)
        time.sleep(1.0 if tty else 5.0)
    if tty:
        typer.echo("")
    return counts


def _check_alive(children: list[ChildProcess]) -> None:
    for child in children:
        if not child.alive():
            typer.echo(f"\n{child.name} stopped unexpectedly; its last output:", err=True)
            typer.echo(child.tail(), err=True)
            raise typer.Exit(1)


def _drain(influx: InfluxDB, ingest: ChildProcess, quiet_s: float = 3.0) -> dict[str, int]:
    """Wait until the ingester has written what the broker still holds (counts stop moving)."""
    counts = stored_counts(influx)
    stable_since = time.monotonic()
    deadline = stable_since + 60.0
    while time.monotonic() - stable_since < quiet_s and time.monotonic() < deadline:
        _check_alive([ingest])
        time.sleep(0.5)
        latest = stored_counts(influx)
        if latest != counts:
            counts, stable_since = latest, time.monotonic()
    return counts


def _summary(influx: InfluxDB, counts: Mapping[str, int], devices: int) -> None:
    reporting = influx.query(
        'SELECT count("seq") FROM "drain","toilet","garbage" GROUP BY "device_id"', DATABASE
    )
    seen = len(reporting["results"][0].get("series", []))
    typer.echo("\nSummary, read back from InfluxDB with InfluxQL:")
    for kind in KINDS:
        typer.echo(f"  {kind:8} {counts[kind]:8,} readings")
    typer.echo(f"  devices reporting: {seen} of {devices}")
    typer.echo(f"  rejected messages: {counts['rejected']} (measurement ingest_rejects)")
    for line in _latest_levels(influx):
        typer.echo(line)


def _latest_levels(influx: InfluxDB) -> Iterator[str]:
    body = influx.query(
        'SELECT last("level_m") AS level_m, last("fill_ratio") AS fill FROM "drain" '
        'GROUP BY "device_id"',
        DATABASE,
    )
    series = body["results"][0].get("series", [])
    if series:
        yield "  latest drain levels:"
    for one in series[:5]:
        _, level, fill = one["values"][0]
        yield f"    {one['tags']['device_id']}: level {level:.3f} m, fill {fill:.0%}"


def run_demo(plan: DemoPlan, work: Path) -> None:
    """Run the demo in ``work``; raises ``typer.Exit`` on failure."""
    typer.echo(
        f"Xiuhua demo: {plan.devices} simulated devices in {plan.district}, scenario "
        f"{plan.scenario}, simulated time x{plan.speed:g}, for {plan.duration_s:g} s."
    )
    with ExitStack() as stack:
        mqtt = stack.enter_context(Mosquitto(work / "mosquitto"))
        influx = stack.enter_context(InfluxDB(work / "influxdb"))
        influx.create_database(DATABASE)
        typer.echo(f"  Mosquitto {mqtt.url}   InfluxDB {influx.url} (database {DATABASE})")
        watch = TelemetryWatch(mqtt.host, mqtt.port)
        stack.callback(watch.close)
        devices = _write_fleet(work, plan)
        ingest_cfg, edge_cfg = _write_configs(work, plan, mqtt.url, influx.url)
        ingest = ChildProcess("ingester", _xiuhua("ingest", "--config", str(ingest_cfg)),
                              work / "ingest.log")  # fmt: skip
        stack.callback(ingest.stop)
        edge = ChildProcess("edge gateway", _xiuhua("edge", "--config", str(edge_cfg)),
                            work / "edge.log")  # fmt: skip
        stack.callback(edge.stop)
        typer.echo("  ingester and edge gateway started; readings stored so far:")
        _watch(influx, [ingest, edge], plan.duration_s)
        typer.echo("  stopping the devices, letting the ingester drain ...")
        edge.stop()
        counts = _drain(influx, ingest)
        _summary(influx, counts, devices)
        stored, published = sum(counts[k] for k in KINDS), watch.count()
        typer.echo(
            f"  published on the broker: {published:,} distinct readings; stored: {stored:,}; "
            f"missing: {published - stored:,}"
        )
        if stored == 0 or stored != published:
            typer.echo("the stored readings do not match the published ones", err=True)
            raise typer.Exit(1)


def demo_command(
    *,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds to run.", min=5)] = 60,
    devices: Annotated[
        int, typer.Option("--devices", help="Simulated devices (a mix of kinds).", min=3)
    ] = 30,
    district: Annotated[str, typer.Option(help="District, lowercase pinyin.")] = "jiaojiang",
    scenario: Annotated[
        str, typer.Option(help="Simulator scenario (see `xiuhua sim scenarios`).")
    ] = "normal_day",
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall-clock second.", min=1)
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed of the fleet and the simulation.")] = 7,
    keep: Annotated[bool, typer.Option(help="Keep the run's folder (logs, data).")] = False,
) -> None:
    """Run everything locally and watch readings flow into InfluxDB."""
    configure_logging("warning")
    plan = DemoPlan(district, devices, scenario, speed, duration_s, seed)
    work = Path(tempfile.mkdtemp(prefix="xiuhua-demo-"))
    try:
        run_demo(plan, work)
        typer.echo(
            f"\nLogs, configs and data of this run: {work}"
            if keep
            else "\n(run with --keep to keep this run's logs, configs and data)"
        )
    except ServiceError as exc:
        typer.echo(f"xiuhua demo: a server did not start: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("\ninterrupted; servers stopped", err=True)
        raise typer.Exit(130) from None
    finally:
        if not keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
