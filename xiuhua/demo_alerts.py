"""The demo's alerting service: its settings, waiting for it, and what it raised.

The demo runs ``xiuhua alerting`` as a child like the ingester and the gateway. Its transitions
go to the broker; the ingester stores them in InfluxDB (``alert_events``, ``alert_incidents``),
and the summary reads them back from there and checks them against what was published.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import typer

from telemetry_core.alerting_wire import AlertingStats
from telemetry_core.schema import TIERS, AlertTransition
from xiuhua._children import ChildProcess
from xiuhua.services import InfluxDB
from xiuhua.watch import AlertWatch

SUBSCRIBED = "mqtt_subscribed"
"""The service's log line once the broker confirmed its subscriptions (log level info)."""
INSTANCE = "demo-alerting"


def write_alerting_config(work: Path, mqtt_url: str, fleet: Path, speed: float) -> Path:
    """``alerting.toml``: the default rules, a SQLite state store in ``work``, stats every second.

    The simulated devices live ``speed`` times faster than the wall clock and behind it (their
    time ends at the present only when the run does), so the service is told to count as caught
    up on readings alone (``catchup_quiet_s``): stopping the devices at the end is not the whole
    fleet falling silent. For the same reason one second of wall-clock jitter is ``speed``
    seconds of simulated time: the service ticks that far behind the newest reading
    (``catchup_lateness_s``), or a stall of the gateway of a fraction of a second would make
    every device that had not yet sent its reading of the moment look silent.
    """
    path = work / "alerting.toml"
    path.write_text(
        f'[mqtt]\nurl = "{mqtt_url}"\n\n[registry]\npath = "{fleet}"\n\n'
        '[log]\nlevel = "info"\n\n'
        f'[alerting]\ninstance = "{INSTANCE}"\n'
        f'state_url = "sqlite:///{work / "alerting.sqlite"}"\n'
        "stats_interval_s = 1.0\ncatchup_quiet_s = 3600.0\n"
        f"catchup_lateness_s = {min(86_400.0, 2.0 * speed):.1f}\n",
        encoding="utf-8",
    )
    return path


def progress(watch: AlertWatch) -> str:
    """The live view's part: alert transitions published so far, by tier reached."""
    transitions, _, _ = watch.snapshot()
    return f"alerts {len(transitions)}"


def wait_drained(
    watch: AlertWatch, check_alive: Callable[[], None], timeout_s: float = 60.0
) -> bool:
    """Wait until the service has read all it was sent: two stats in a row, both taken after
    the call, with nothing waiting and the same count received. False on time-out."""
    since_ms = int(time.time() * 1000)
    deadline = time.monotonic() + timeout_s
    last: AlertingStats | None = None
    while time.monotonic() < deadline:
        check_alive()
        stats = _stats(watch)
        if stats is not None and stats.ts > since_ms and (last is None or stats.ts > last.ts):
            if last is not None and last.received == stats.received and stats.backlog == 0:
                return True
            last = stats
        time.sleep(0.2)
    return False


def stop(alerting: ChildProcess, watch: AlertWatch, check_alive: Callable[[], None]) -> None:
    """Let the alerting service read what the devices sent, then stop it (a last checkpoint;
    its transitions are with the broker when it exits); exit 1 if it fails."""
    if not wait_drained(watch, check_alive):
        typer.echo("  (the alerting service did not report idle in time; stopping it)", err=True)
    code = alerting.stop()
    if code != 0:
        typer.echo(f"{alerting.name} exited with {code}; its last output:", err=True)
        typer.echo(alerting.tail(), err=True)
        raise typer.Exit(1)


def _stats(watch: AlertWatch) -> AlertingStats | None:
    _, _, stats = watch.snapshot()
    return next((s for s in stats if s.instance == INSTANCE), None)


def stored_alerts(influx: InfluxDB, database: str) -> int:
    """Alert transitions stored by the ingester (measurement ``alert_events``)."""
    return influx.count("alert_events", database, "transition_id")


def summary(influx: InfluxDB, database: str, watch: AlertWatch) -> tuple[list[str], bool]:
    """The summary's lines, read back from InfluxDB, and whether every transition landed."""
    published, _, _ = watch.snapshot()
    stored = stored_alerts(influx, database)
    lines = ["\nAlert transitions, read back from InfluxDB (measurement alert_events):"]
    by_tier = _grouped(influx, database, "tier_to")
    lines.append(f"  transitions: {stored:,}" + (f" (to {_by_tier(by_tier)})" if stored else ""))
    by_rule = _grouped(influx, database, "rule")
    if by_rule:
        lines.append("  by rule: " + " · ".join(f"{r} {n}" for r, n in _top(by_rule)))
    lines += list(_raised_now(published))
    incidents = _incidents(influx, database)
    lines.append(f"  incidents: {incidents} (measurement alert_incidents)")
    lines.append(
        f"  published by the alerting service: {len(published):,} distinct transitions; "
        f"stored: {stored:,}; missing: {len(published) - stored:,}"
    )
    return lines, stored == len(published)


def _grouped(influx: InfluxDB, database: str, tag: str) -> dict[str, int]:
    body = influx.query(
        f'SELECT count("transition_id") FROM "alert_events" GROUP BY "{tag}"',  # noqa: S608 - a fixed tag name
        database,
    )
    return {
        one["tags"][tag]: int(one["values"][0][1]) for one in body["results"][0].get("series", [])
    }


def _by_tier(counts: Mapping[str, int]) -> str:
    """Counts per tier reached, in tier order (``none``: an alert that cleared)."""
    return " · ".join(f"{t} {counts[t]}" for t in (*TIERS[1:], TIERS[0]) if counts.get(t))


def _top(counts: Mapping[str, int], n: int = 6) -> Iterator[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    yield from ranked[:n]
    if len(ranked) > n:
        yield f"and {len(ranked) - n} more rules", sum(v for _, v in ranked[n:])


def _raised_now(transitions: Iterable[AlertTransition]) -> Iterator[str]:
    """The alerts standing at the end: the last transition of each (device, rule)."""
    last: dict[tuple[str, str], AlertTransition] = {}
    for t in sorted(transitions, key=lambda t: t.ts):
        last[(t.device_id, t.rule)] = t
    standing: Counter[str] = Counter(t.tier_to for t in last.values() if t.tier_to != "none")
    text = " · ".join(f"{tier} {standing[tier]}" for tier in TIERS[1:] if standing[tier])
    yield f"  standing at the end: {sum(standing.values())}" + (f" ({text})" if text else "")


def _incidents(influx: InfluxDB, database: str) -> int:
    body = influx.query('SELECT count(distinct("incident_id")) FROM "alert_incidents"', database)
    series = body["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0
