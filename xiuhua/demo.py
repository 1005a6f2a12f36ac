"""``xiuhua demo``: the whole pipeline on this machine, with a live count of readings stored.

Starts Mosquitto and InfluxDB as child processes, writes a fleet file for one district, runs the
cloud ingester, the alerting service and an edge gateway hosting simulated devices (as the same
``xiuhua ingest``, ``xiuhua alerting`` and ``xiuhua edge`` commands an operator would run), shows
readings landing in InfluxDB and alert transitions raised as they arrive, then drains and stops
everything and prints a summary read back with InfluxQL (readings, and the alert transitions
the ingester stored).

Simulated time runs ``speed`` times faster than the wall clock, so it starts in the past
(``[edge] sim_start`` = now - (duration + 5 s) x speed) and ends at the present, less the few
seconds' slack the gateway needs to stop: every timestamp is one the ingester accepts, and the
scenario is played from its start. The duration counts from when the gateway is ready.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from telemetry_core.config_rules import parse_duration
from telemetry_core.errors import ServiceError
from telemetry_core.kinds import DeviceKind
from telemetry_core.logging import configure_logging
from telemetry_core.registry import Device, write_registry_csv
from xiuhua import demo_alerts
from xiuhua._children import OWNER_FILE, ChildProcess, remove_stale_folders
from xiuhua._signals import Interrupted, interrupt_on_signals
from xiuhua.services import InfluxDB, Mosquitto
from xiuhua.watch import AlertWatch, TelemetryWatch

__all__ = [
    "STOP_SLACK_S",
    "ChildProcess",
    "DemoPlan",
    "demo_command",
    "run_demo",
    "sim_start_iso",
    "stored_counts",
]

DATABASE = "xiuhua"
KINDS = tuple(k.value for k in DeviceKind)
MAX_SIMULATED_S = 6 * 86_400.0
"""Readings older than the ingester's ``max_past_s`` (7 days by default) are rejected."""
STOP_SLACK_S = 5.0
"""Wall seconds of simulated time kept in hand for stopping the gateway: it samples until its
SIGTERM arrives, and at 3600x each late wall second would be an hour in the future."""


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """What the demo runs: where, how many devices, which scenario, how fast, for how long."""

    district: str
    devices: int
    scenario: str
    speed: float
    duration_s: float
    seed: int

    @property
    def simulated_s(self) -> float:
        """How much simulated time the run covers."""
        return self.duration_s * self.speed

    @property
    def sim_lead_s(self) -> float:
        """How far before now simulated time starts: the run, plus the slack for stopping."""
        return (self.duration_s + STOP_SLACK_S) * self.speed

    def check(self) -> None:
        """``ValueError`` naming the option, for a plan the demo cannot run."""
        if self.duration_s < 5:
            raise ValueError(f"--duration {self.duration_s:g}s is too short: at least 5s")
        if self.devices < 3:
            raise ValueError(f"--devices {self.devices}: at least 3 (one of each kind)")
        if self.speed < 1:
            raise ValueError(f"--speed {self.speed:g}: at least 1 (real time)")
        if self.sim_lead_s > MAX_SIMULATED_S:
            raise ValueError(
                f"--duration x --speed covers {self.sim_lead_s / 86_400:.1f} simulated days; "
                "the ingester refuses readings older than 7 days, so keep it under "
                f"{MAX_SIMULATED_S / 86_400:.0f} days"
            )


def _xiuhua(*args: str) -> list[str]:
    return [sys.executable, "-m", "xiuhua", *args]


def sim_start_iso(plan: DemoPlan, now_s: float) -> str:
    """``[edge] sim_start`` for a run that ends at the present (less the stop slack), in UTC."""
    start = datetime.fromtimestamp(now_s - plan.sim_lead_s, tz=UTC)
    return start.isoformat(timespec="seconds")


def _write_configs(work: Path, plan: DemoPlan, mqtt_url: str, influx_url: str) -> tuple[Path, Path]:
    fleet = work / "fleet.csv"
    common = (
        f'[mqtt]\nurl = "{mqtt_url}"\n\n[registry]\npath = "{fleet}"\n\n'
        '[log]\nlevel = "warning"\n\n'
    )
    ingest = work / "ingest.toml"
    ingest.write_text(
        common + f'[influx]\nurl = "{influx_url}"\ndatabase = "{DATABASE}"\n\n'
        '[ingest]\ninstance = "demo-ingest-1"\nstats_interval_s = 5.0\n',
        encoding="utf-8",
    )
    edge = work / "edge.toml"
    edge.write_text(
        common + f'[edge]\ngateway_id = "gw-demo-{plan.district}"\n'
        f'scenario = "{plan.scenario}"\nseed = {plan.seed}\nsim_speed = {plan.speed}\n'
        f'sim_start = "{sim_start_iso(plan, time.time())}"\n'
        f'state_dir = "{work / "edge-state"}"\n',
        encoding="utf-8",
    )
    return ingest, edge


def _fleet(plan: DemoPlan) -> list[Device]:
    """The demo's devices; ``FleetError`` naming the valid districts for an unknown one."""
    from firmware_sim import make_fleet

    return make_fleet(plan.district, None, plan.devices, plan.seed)


def stored_counts(influx: InfluxDB) -> dict[str, int]:
    """Readings stored per kind, and rejected messages, read back with InfluxQL."""
    counts = {kind: influx.count(kind, DATABASE, "seq") for kind in KINDS}
    counts["rejected"] = influx.count("ingest_rejects", DATABASE)
    return counts


def _progress_line(elapsed_s: float, counts: Mapping[str, int], rate: float, alerts: str) -> str:
    total = sum(counts[k] for k in KINDS)
    per_kind = " · ".join(f"{k} {counts[k]:,}" for k in KINDS)
    return (
        f"  {elapsed_s:5.0f} s   stored {total:7,} readings ({per_kind})   "
        f"rejected {counts['rejected']}   {rate:6.1f}/s   {alerts}"
    )


def _watch(
    influx: InfluxDB, children: list[ChildProcess], duration_s: float, alerts: AlertWatch
) -> dict[str, int]:
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
        line = _progress_line(now - started, counts, rate, demo_alerts.progress(alerts))
        typer.echo(f"\r{line}" if tty else line, nl=not tty)
        # Never past the planned end: simulated time would run beyond the present.
        time.sleep(min(1.0 if tty else 5.0, max(0.0, duration_s - (time.monotonic() - started))))
    if tty:
        typer.echo("")
    return counts


def _check_alive(children: list[ChildProcess]) -> None:
    for child in children:
        if not child.alive():
            typer.echo(f"\n{child.name} stopped unexpectedly; its last output:", err=True)
            typer.echo(child.tail(), err=True)
            raise typer.Exit(1)


def _wait_started(
    child: ChildProcess, marker: str, children: list[ChildProcess], timeout_s: float = 180.0
) -> None:
    """Wait until ``child`` printed ``marker`` (its start-up summary); exit 1 if it never does."""
    deadline = time.monotonic() + timeout_s
    while marker not in child.log_path.read_text(encoding="utf-8", errors="replace"):
        _check_alive(children)
        if time.monotonic() > deadline:
            typer.echo(f"{child.name} did not start within {timeout_s:g} s:", err=True)
            typer.echo(child.tail(), err=True)
            raise typer.Exit(1)
        time.sleep(0.2)


def _drain(influx: InfluxDB, ingest: ChildProcess, quiet_s: float = 3.0) -> dict[str, int]:
    """Wait until the ingester has written what the broker still holds (counts, alert
    transitions included, stop moving)."""

    def now() -> tuple[dict[str, int], int]:
        return stored_counts(influx), demo_alerts.stored_alerts(influx, DATABASE)

    counts = now()
    stable_since = time.monotonic()
    deadline = stable_since + 60.0
    while time.monotonic() - stable_since < quiet_s and time.monotonic() < deadline:
        _check_alive([ingest])
        time.sleep(0.5)
        latest = now()
        if latest != counts:
            counts, stable_since = latest, time.monotonic()
    return counts[0]


def _summary(influx: InfluxDB, counts: Mapping[str, int], devices: int) -> None:
    reporting = influx.query(
        'SELECT count("seq") FROM "drain","toilet","garbage","rain" GROUP BY "device_id"', DATABASE
    )
    seen = len(reporting["results"][0].get("series", []))
    typer.echo("\nSummary, read back from InfluxDB with InfluxQL:")
    for kind in KINDS:
        typer.echo(f"  {kind:8} {counts[kind]:8,} readings")
    typer.echo(f"  devices reporting: {seen} of {devices}")
    typer.echo(f"  rejected messages: {counts['rejected']} (measurement ingest_rejects)")
    for line in (*_drain_peak(influx), *_latest_levels(influx)):
        typer.echo(line)


def _drain_peak(influx: InfluxDB) -> Iterator[str]:
    """The run's highest water: a storm shows as fill above 100 % (surcharged pipes)."""
    body = influx.query(
        'SELECT max("level_m") AS level_m, max("fill_ratio") AS fill FROM "drain"', DATABASE
    )
    for one in body["results"][0].get("series", []):
        _, level, fill = one["values"][0]
        yield f"  highest drain level in the run: {level:.3f} m, fill up to {fill:.0%}"


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


def _span(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def run_demo(plan: DemoPlan, fleet: list[Device], work: Path) -> None:
    """Run the demo in ``work``; raises ``typer.Exit`` on failure."""
    typer.echo(
        f"Xiuhua demo: {plan.devices} simulated devices in {plan.district}, scenario "
        f"{plan.scenario}, simulated time x{plan.speed:g}, for {plan.duration_s:g} s "
        f"({_span(plan.simulated_s)} of simulated time, ending "
        f"{_span(STOP_SLACK_S * plan.speed)} before now)."
    )
    with ExitStack() as stack:
        mqtt = stack.enter_context(Mosquitto(work / "mosquitto"))
        influx = stack.enter_context(InfluxDB(work / "influxdb"))
        influx.create_database(DATABASE)
        typer.echo(f"  Mosquitto {mqtt.url}   InfluxDB {influx.url} (database {DATABASE})")
        watch = TelemetryWatch(mqtt.host, mqtt.port)
        stack.callback(watch.close)
        alert_watch = AlertWatch(mqtt.host, mqtt.port)
        stack.callback(alert_watch.close)
        write_registry_csv(fleet, work / "fleet.csv")
        devices = len(fleet)
        ingest_cfg, edge_cfg = _write_configs(work, plan, mqtt.url, influx.url)
        alerting_cfg = demo_alerts.write_alerting_config(
            work, mqtt.url, work / "fleet.csv", plan.speed
        )
        ingest = ChildProcess("ingester", _xiuhua("ingest", "--config", str(ingest_cfg)),
                              work / "ingest.log")  # fmt: skip
        stack.callback(ingest.stop)
        alerting = ChildProcess("alerting service",
                                _xiuhua("alerting", "--config", str(alerting_cfg)),
                                work / "alerting.log")  # fmt: skip
        stack.callback(alerting.stop)
        # Subscribed before the devices start, or it would miss their first readings.
        _wait_started(alerting, demo_alerts.SUBSCRIBED, [ingest, alerting])
        edge = ChildProcess("edge gateway", _xiuhua("edge", "--config", str(edge_cfg)),
                            work / "edge.log")  # fmt: skip
        stack.callback(edge.stop)
        children = [ingest, alerting, edge]
        # The simulated devices need a few seconds (SWMM) before their time starts; the run's
        # duration counts from then, so simulated time ends at the present as planned.
        _wait_started(edge, "stop with Ctrl-C or SIGTERM", children)  # its summary
        typer.echo("  ingester, alerting service and edge gateway started; readings stored so far:")
        _watch(influx, children, plan.duration_s, alert_watch)
        typer.echo(
            "  stopping the devices, letting the alerting service and the ingester drain ..."
        )
        edge.stop()
        demo_alerts.stop(alerting, alert_watch, lambda: _check_alive([alerting]))
        counts = _drain(influx, ingest)
        _summary(influx, counts, devices)
        stored, published = sum(counts[k] for k in KINDS), watch.count()
        typer.echo(
            f"  published on the broker: {published:,} distinct readings; stored: {stored:,}; "
            f"missing: {published - stored:,}"
        )
        alert_lines, alerts_landed = demo_alerts.summary(influx, DATABASE, alert_watch)
        for line in alert_lines:
            typer.echo(line)
        if stored == 0 or stored != published:
            typer.echo("the stored readings do not match the published ones", err=True)
            raise typer.Exit(1)
        if not alerts_landed:
            typer.echo("the stored alert transitions do not match the published ones", err=True)
            raise typer.Exit(1)


def demo_command(
    *,
    duration: Annotated[
        str, typer.Option("--duration", metavar="DURATION", help="How long to run: 60s, 5m.")
    ] = "60s",
    devices: Annotated[
        int, typer.Option("--devices", metavar="N", help="Simulated devices (a mix of kinds).")
    ] = 30,
    district: Annotated[
        str, typer.Option(metavar="NAME", help="District, lowercase pinyin.")
    ] = "jiaojiang",
    scenario: Annotated[
        str, typer.Option(metavar="NAME", help="Simulator scenario (see `xiuhua sim scenarios`).")
    ] = "normal_day",
    speed: Annotated[
        float, typer.Option(metavar="X", help="Simulated seconds per wall-clock second.")
    ] = 60.0,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed of the fleet and the simulation.")
    ] = 7,
    keep: Annotated[bool, typer.Option(help="Keep the run's folder (logs, data).")] = False,
) -> None:
    """Run everything locally and watch readings flow into InfluxDB.

    The alerting service runs beside the ingester: the live view counts the alert transitions
    it raises, and the summary reads them back from InfluxDB (alert_events).

    Ctrl-C or SIGTERM stops the devices, the ingester, the alerting service and the servers,
    and removes the run's temporary folder (unless --keep).
    """
    plan, fleet = _validated(
        duration, devices=devices, district=district, scenario=scenario, speed=speed, seed=seed
    )
    configure_logging("warning")
    with interrupt_on_signals():
        try:
            _run_in_folder(plan, fleet, keep=keep)
        except Interrupted as exc:
            typer.echo(f"\n{exc}: devices, ingester, alerting and servers stopped", err=True)
            raise typer.Exit(exc.exit_code) from None


def _validated(
    duration: str, *, devices: int, district: str, scenario: str, speed: float, seed: int
) -> tuple[DemoPlan, list[Device]]:
    """Every option checked before anything starts; exit 2 with a message naming the option."""
    from firmware_sim import FleetError, ScenarioError, load_scenario

    try:
        plan = DemoPlan(district, devices, scenario, speed, _duration_s(duration), seed)
        plan.check()
        load_scenario(scenario)
        return plan, _fleet(plan)
    except (ValueError, FleetError, ScenarioError) as exc:
        typer.echo(f"xiuhua demo: {_option_of(exc)}{exc}", err=True)
        raise typer.Exit(2) from exc


def _duration_s(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"--duration {exc}") from None


def _option_of(exc: Exception) -> str:
    from firmware_sim import FleetError, ScenarioError

    if isinstance(exc, FleetError):
        return "--district: " if "district" in str(exc) else "--devices: "
    return "--scenario: " if isinstance(exc, ScenarioError) else ""


def _run_in_folder(plan: DemoPlan, fleet: list[Device], *, keep: bool) -> None:
    for stale in remove_stale_folders(Path(tempfile.gettempdir())):
        typer.echo(f"  removed {stale}, left by a demo that was killed", err=True)
    work = Path(tempfile.mkdtemp(prefix="xiuhua-demo-"))
    if not keep:
        (work / OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
    try:
        run_demo(plan, fleet, work)
        if not keep:
            typer.echo("\n(run with --keep to keep this run's logs, configs and data)")
    except ServiceError as exc:
        typer.echo(f"xiuhua demo: a server did not start: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        if keep:
            typer.echo(f"\nLogs, configs and data of this run: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
