"""``xiuhua alerting silence …`` and ``xiuhua alerting alerts``: what an operator does by hand.

Silences live in the service's state store (``[alerting] state_url``); a running service reads
them again every ``silence_refresh_s``. Times are event times, in seconds since the epoch; a
silence mutes notifications only: matching alerts still change state, so the map stays true.
"""

from __future__ import annotations

import difflib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from alerting import AlertStore, Silence

silence_app = typer.Typer(
    help=(
        "Maintenance silences (as Alertmanager's): mute the notifications of alerts by device, "
        "district or rule until an end time. Alerts still change state; a running service "
        "picks a change up within [alerting] silence_refresh_s (5 s by default)."
    ),
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings TOML; its [alerting] state_url names the store."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="SQLAlchemy URL of the state store; overrides --config."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"xiuhua alerting: {message}", err=True)
    return typer.Exit(2)


def _open(config: Path | None, store_url: str | None) -> AlertStore:
    from alerting import AlertingSettings, AlertStore, StoreError
    from telemetry_core.errors import ConfigError
    from telemetry_core.settings import load_settings

    if store_url is None:
        try:
            store_url = load_settings(AlertingSettings, config).alerting.state_url
        except ConfigError as exc:
            raise _fail(str(exc)) from exc
    try:
        return AlertStore(store_url)
    except StoreError as exc:
        raise _fail(str(exc)) from exc


def _at(text: str, option: str) -> float:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} {text!r}: want an ISO 8601 time with a zone") from None
    if at.tzinfo is None:
        raise _fail(f"{option} {text!r}: give the time zone, e.g. {text}+08:00")
    return at.timestamp()


def _known_rule(rule: str, config: Path | None) -> None:
    from alerting import AlertingSettings, RuleError, rules_of
    from telemetry_core.errors import ConfigError
    from telemetry_core.settings import load_settings

    try:
        names = {r.name for r in rules_of(load_settings(AlertingSettings, config).alerting).rules}
    except (ConfigError, RuleError) as exc:
        raise _fail(str(exc)) from exc
    if rule not in names:
        near = difflib.get_close_matches(rule, sorted(names), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise _fail(f"--rule {rule!r} is not in the rule set{hint}")


def _when(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, UTC).astimezone().isoformat(timespec="minutes")


@silence_app.command("add")
def silence_add(
    *,
    device: Annotated[str | None, typer.Option("--device", help="A device id.")] = None,
    district: Annotated[str | None, typer.Option("--district", help="A district.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="A rule name.")] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="How long from the start: 90m, 6h, 2d.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="End (ISO 8601 with zone).")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start (ISO 8601 with zone); default: now.")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="Why (who, work order).")] = "",
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Add a silence: every part given must match (device, district, rule); print its id."""
    from alerting import Silence
    from telemetry_core.config_rules import parse_duration
    from telemetry_core.errors import ContractError
    from telemetry_core.topics import check_district

    if device is None and district is None and rule is None:
        raise _fail("silence add: give --device, --district or --rule (or several)")
    if (for_ is None) == (until is None):
        raise _fail("silence add: give exactly one of --for and --until")
    if district is not None:
        try:
            check_district(district)
        except ContractError as exc:
            raise _fail(f"--district: {exc}") from exc
    if rule is not None:
        _known_rule(rule, config)
    starts_s = _at(from_, "--from") if from_ else time.time()
    if for_ is not None:
        try:
            ends_s = starts_s + parse_duration(for_)
        except ValueError as exc:
            raise _fail(f"--for {exc}") from exc
    else:
        ends_s = _at(until or "", "--until")
    if ends_s <= time.time():
        raise _fail(f"silence add: it would already be over ({_when(ends_s)})")
    if ends_s <= starts_s:
        raise _fail(f"silence add: it must end after it starts ({_when(starts_s)})")
    silence = Silence(
        ends_s=ends_s, device_id=device, district=district, rule=rule, starts_s=starts_s,
        comment=comment,
    )  # fmt: skip
    silence_id = _open(config, store).add_silence(silence)
    typer.echo(f"silence {silence_id}: {_describe(silence)}")


def _describe(s: Silence) -> str:
    parts = [f"{k}={v}" for k, v in (("device", s.device_id), ("district", s.district),
                                      ("rule", s.rule)) if v is not None]  # fmt: skip
    text = f"{' '.join(parts)}  from {_when(s.starts_s)} until {_when(s.ends_s)}"
    return f"{text}  {s.comment}" if s.comment else text


@silence_app.command("list")
def silence_list(
    *,
    all_: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """List the silences in force or to come (``--all``: ended ones too)."""
    now_s = time.time()
    records = _open(config, store).silence_records(None if all_ else now_s)
    if not records:
        typer.echo("no silences" if all_ else "no silences in force or to come")
        return
    for silence_id, s in records:
        state = "ended" if s.ends_s <= now_s else "active" if s.starts_s <= now_s else "pending"
        typer.echo(f"{silence_id:>5}  {state:<7}  {_describe(s)}")


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[
        str, typer.Option("--id", metavar="ID", help="The id `silence list` shows.")
    ],
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """End a silence now (one not begun yet is deleted)."""
    if not silence_id.isdigit():
        raise _fail(f"silence expire {silence_id!r}: want the number `silence list` shows")
    if not _open(config, store).expire_silence(int(silence_id), time.time()):
        raise _fail(f"silence {silence_id}: no such silence in force or to come (silence list)")
    typer.echo(f"silence {silence_id}: expired")


def alerts(
    *,
    district: Annotated[str | None, typer.Option("--district", help="Only this district.")] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """List the alerts standing now (device, rule, tier, since), as the state store holds them."""
    rows = [a for a in _open(config, store).active_alerts() if district in (None, a.district)]
    if not rows:
        typer.echo("no active alerts")
        return
    order = {"red": 0, "orange": 1, "yellow": 2, "blue": 3}
    rows.sort(key=lambda a: (order.get(a.tier, 9), a.district, a.device_id, a.rule))
    for a in rows:
        marks = " flapping" if a.flapping else ""
        marks += f" incident={a.incident_id}" if a.incident_id else ""
        typer.echo(
            f"{a.tier:<6}  {a.district:<10}  {a.device_id:<16}  {a.rule:<28}  "
            f"since {_when(a.opened_ts / 1000)}{marks}"
        )
    typer.echo(f"{len(rows)} active alert(s)")
