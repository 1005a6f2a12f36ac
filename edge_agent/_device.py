"""One device inside the agent: sampling, edge processing, messages, and its commands."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
import structlog

from edge_agent._config import ConfigStore, VersionedConfig, merge_config
from edge_agent._filters import Crossing, ExceptionReporter, MedianFilter, ThresholdWatch
from edge_agent._spool import Priority
from edge_agent.errors import AgentConfigError
from telemetry_core.clock import Clock, now_ms
from telemetry_core.driver import DriverError, LinkProbe, SensorDriver
from telemetry_core.errors import RejectedMessage, RejectReason
from telemetry_core.kinds import DeviceKind, kind_spec
from telemetry_core.schema import (
    CONTRACT_VERSION,
    Command,
    CommandAck,
    Event,
    Quality,
    Severity,
    Status,
    Telemetry,
    decode,
)
from telemetry_core.topics import Channel, Topic

log = structlog.get_logger()

Message = Telemetry | Event | CommandAck


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for the spool: where it goes and how hard to keep it when the spool is full."""

    device_id: str
    channel: Channel
    topic: str
    message: Message
    priority: Priority


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command asks of the agent beyond the messages it produced."""

    outgoing: list[Outgoing] = field(default_factory=list)
    publish_status: bool = False
    restart: bool = False


def new_boot_id() -> str:
    """A fresh boot id: 16 URL-safe random characters, unique per start of a device."""
    return secrets.token_urlsafe(12)


class DeviceRuntime:
    """A device's live state: config, filters, boot id and sequence numbers."""

    def __init__(
        self,
        topic: Topic,
        driver: SensorDriver,
        store: ConfigStore,
        clock: Clock,
        firmware: str,
    ) -> None:
        if driver.device_id != topic.device_id or DeviceKind(driver.kind) is not topic.kind:
            raise AgentConfigError(
                f"driver for {driver.device_id} ({driver.kind}) cannot serve {topic.device_id} "
                f"({topic.kind.value})"
            )
        self._topic = topic
        self._driver = driver
        self._store = store
        self._clock = clock
        self._firmware = firmware
        specs = kind_spec(topic.kind).metrics
        self._metrics = frozenset(specs)
        self._floors = {name: spec.resolution for name, spec in specs.items()}
        self._faulted = False
        # Checked once: an isinstance test against a runtime Protocol is too slow per sample.
        self._probe = driver if isinstance(driver, LinkProbe) else None
        self._probe_failing = False
        self.link_up = True
        self.birth_reason = ""
        self.boot_id = ""
        self.seq = 0
        self.next_due_s = clock.monotonic_s()
        self.reboot()

    # -- identity ----------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        """The device id."""
        return self._topic.device_id

    @property
    def topic(self) -> Topic:
        """The device's telemetry topic; other channels via ``topic.sibling``."""
        return self._topic

    @property
    def config(self) -> VersionedConfig:
        """The config in force and its version."""
        return self._config

    def reboot(self) -> None:
        """Start a new boot: fresh boot id, sequence from 0, filters empty, stored config."""
        self.boot_id = new_boot_id()
        self.seq = 0
        self._apply(self._store.load())

    def _apply(self, versioned: VersionedConfig) -> None:
        self._config = versioned
        config = versioned.config
        self._median = MedianFilter(config.median_window, config.deadbands, self._floors)
        self._reporter = ExceptionReporter(config)
        self._watch = ThresholdWatch(config.thresholds)

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    # -- status ------------------------------------------------------------------------------

    def status(self, state: str, reason: str = "") -> Status:
        """A birth (``online``) or last-will/shutdown (``offline``) status of this boot."""
        return Status(
            v=CONTRACT_VERSION,
            device_id=self.device_id,
            ts=now_ms(self._clock),
            boot_id=self.boot_id,
            state="online" if state == "online" else "offline",
            firmware=self._firmware,
            config_version=self._config.version,
            reason=reason,
        )

    # -- the device's own link ------------------------------------------------------------------

    def check_link(self) -> bool | None:
        """Ask the driver whether the device's link works; the new state if it changed, else None.

        Drivers without a :class:`LinkProbe` are always up. A probe that raises
        :class:`DriverError` counts as up: the spool keeps every message either way, and a
        broken probe must not silence a device that may well be reachable.
        """
        if self._probe is None:
            return None
        try:
            up = bool(self._probe.link_up(self._clock.now_s()))
            self._probe_failing = False
        except DriverError as exc:
            if not self._probe_failing:
                log.warning("link_probe_failed", device_id=self.device_id, detail=exc.detail)
            self._probe_failing = True
            up = True
        if up == self.link_up:
            return None
        self.link_up = up
        return up

    # -- sampling ----------------------------------------------------------------------------

    def sample(self) -> list[Outgoing]:
        """Read the sensors once; the events and telemetry this sample produces."""
        now_s = self._clock.now_s()
        try:
            raw = self._driver.read(now_s)
        except DriverError as exc:
            return self._fault(exc.detail, exc.metric)
        clean = {m: float(v) for m, v in raw.items() if m in self._metrics and math.isfinite(v)}
        # A non-finite value is a sensor fault of that metric: flagged on the wire, not hidden.
        quality = {
            m: Quality.SENSOR_FAULT.value for m in raw if m in self._metrics and m not in clean
        }
        if not clean:
            return self._fault("driver returned no usable reading", None)
        out = self._recovered() if self._faulted else []
        filtered, spikes = self._median.update_flagged(clean)
        quality.update((m, Quality.SPIKE_FILTERED.value) for m in spikes)
        crossings = self._watch.update(filtered)
        out.extend(self._threshold_event(c) for c in crossings)
        # A rejected spike is news for the cloud (sensor health) even when the median hid it.
        reason = self._reporter.due(filtered, now_s) or _extra_reason(crossings, spikes)
        if reason is not None:
            self._reporter.sent(filtered, now_s)
            out.append(self._telemetry(filtered, quality))
        return out

    def _telemetry(self, readings: Mapping[str, float], quality: Mapping[str, str]) -> Outgoing:
        message = Telemetry(
            v=CONTRACT_VERSION,
            device_id=self.device_id,
            ts=now_ms(self._clock),
            seq=self._next_seq(),
            boot_id=self.boot_id,
            readings=dict(readings),
            quality=dict(quality) or None,
        )
        return self._outgoing(Channel.TELEMETRY, message, Priority.ROUTINE)

    def event(
        self,
        type_: str,
        severity: Severity,
        message: str = "",
        *,
        metric: str | None = None,
        value: float | None = None,
        data: Mapping[str, float | int | str | bool] | None = None,
    ) -> Outgoing:
        """An event of this device with the next sequence number."""
        event = Event(
            v=CONTRACT_VERSION,
            device_id=self.device_id,
            ts=now_ms(self._clock),
            seq=self._next_seq(),
            boot_id=self.boot_id,
            type=type_,
            severity=severity,
            metric=metric,
            value=value,
            message=message[:512],
            data=dict(data or {}),
        )
        return self._outgoing(Channel.EVENT, event, Priority.EVENT)

    def _threshold_event(self, crossing: Crossing) -> Outgoing:
        severity = (
            Severity.INFO
            if crossing.event_type == "threshold_cleared"
            else Severity(crossing.severity)
        )
        return self.event(
            crossing.event_type,
            severity,
            f"{crossing.metric} {crossing.value:g} vs limit {crossing.limit:g}",
            metric=crossing.metric,
            value=crossing.value,
            data={"limit": crossing.limit, "previous": crossing.previous.value},
        )

    def _fault(self, detail: str, metric: str | None) -> list[Outgoing]:
        # Report the start of a fault once, not every interval; the recovery is reported too.
        if self._faulted:
            return []
        self._faulted = True
        log.warning("device_fault", device_id=self.device_id, detail=detail, metric=metric)
        return [self.event("device_fault", Severity.WARNING, detail, metric=metric)]

    def _recovered(self) -> list[Outgoing]:
        self._faulted = False
        log.info("device_recovered", device_id=self.device_id)
        return [self.event("device_recovered", Severity.INFO, "sensors readable again")]

    def drop_report(self, counts: Mapping[str, int], for_device_id: str = "") -> Outgoing:
        """The ``spool_dropped`` event that reports what the spool had to discard.

        ``for_device_id`` names another device whose drops this one reports (a device that a
        gateway no longer hosts); it goes into ``data["for_device_id"]``.
        """
        total = sum(counts.values())
        data: dict[str, float | int | str | bool] = {
            f"{cause}_dropped": count for cause, count in sorted(counts.items())
        }
        whose = ""
        if for_device_id and for_device_id != self.device_id:
            data["for_device_id"] = for_device_id
            whose = f" by {for_device_id}"
        return self.event(
            "spool_dropped",
            Severity.WARNING,
            f"{total} messages{whose} dropped (spool full, too old or refused)",
            data=data,
        )

    # -- commands ------------------------------------------------------------------------------

    def handle_command(self, payload: bytes) -> CommandOutcome:
        """Validate and carry out a command; a refused one changes nothing and says why.

        Never raises: the payload comes from the broker, and whatever it does to the code
        (even an exception nobody foresaw) ends as a refusal with a reason, not a dead agent.
        """
        try:
            return self._handle_command(payload)
        except Exception as exc:  # a command may never kill the agent
            detail = f"{RejectReason.INTERNAL_ERROR.value}: {type(exc).__name__}: {_text_of(exc)}"
            log.exception("command_internal_error", device_id=self.device_id)
            return self._refuse(payload, detail)

    def _handle_command(self, payload: bytes) -> CommandOutcome:
        try:
            command = decode(payload, Command)
        except RejectedMessage as exc:
            log.warning("command_rejected", device_id=self.device_id, reason=exc.reason.value)
            return self._refuse(payload, str(exc))
        if command.op == "set_config":
            return CommandOutcome([self._set_config(command)])
        ack = self._ack(command.cmd_id, ok=True)
        return CommandOutcome(
            [ack], publish_status=command.op == "publish_status", restart=command.op == "restart"
        )

    def _refuse(self, payload: bytes, reason: str) -> CommandOutcome:
        """A refusal: an ack if the payload names a usable ``cmd_id``, else an event."""
        cmd_id = _lenient_cmd_id(payload)
        if cmd_id is None:
            return CommandOutcome([self.event("command_rejected", Severity.WARNING, reason)])
        return CommandOutcome([self._ack(cmd_id, ok=False, reason=reason)])

    def _set_config(self, command: Command) -> Outgoing:
        current = self._config
        if command.cmd_id == current.last_cmd_id:
            # QoS 1 may deliver a command twice: acknowledge the repeat, do not re-apply it.
            return self._ack(command.cmd_id, ok=True)
        try:
            config = merge_config(current.config, command.config, self._topic.kind)
            updated = VersionedConfig(config, current.version + 1, command.cmd_id)
            self._store.save(updated)
        except AgentConfigError as exc:
            log.warning(
                "config_refused", device_id=self.device_id, cmd_id=command.cmd_id, reason=str(exc)
            )
            return self._ack(command.cmd_id, ok=False, reason=str(exc))
        except OSError as exc:
            return self._ack(command.cmd_id, ok=False, reason=f"cannot persist config: {exc}")
        self._apply(updated)
        self.next_due_s = min(self.next_due_s, self._clock.monotonic_s() + config.interval_s)
        log.info("config_applied", device_id=self.device_id, version=updated.version)
        return self._ack(command.cmd_id, ok=True)

    def _ack(self, cmd_id: str, *, ok: bool, reason: str = "") -> Outgoing:
        ack = CommandAck(
            v=CONTRACT_VERSION,
            cmd_id=cmd_id,
            device_id=self.device_id,
            ts=now_ms(self._clock),
            ok=ok,
            reason=reason[:512],
            config_version=self._config.version,
        )
        return self._outgoing(Channel.CMD_ACK, ack, Priority.EVENT)

    def _outgoing(self, channel: Channel, message: Message, priority: Priority) -> Outgoing:
        topic = str(self._topic.sibling(channel))
        return Outgoing(self.device_id, channel, topic, message, priority)


def _extra_reason(crossings: list[Crossing], spikes: frozenset[str]) -> str | None:
    if crossings:
        return "threshold"
    return "spike" if spikes else None


class _CmdIdOnly(msgspec.Struct):
    cmd_id: str


def _text_of(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still has a type
        return "(no description)"


def _lenient_cmd_id(payload: bytes) -> str | None:
    """The ``cmd_id`` of a command that failed validation, so the refusal can be acknowledged."""
    try:
        cmd_id = msgspec.json.decode(payload, type=_CmdIdOnly).cmd_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    ok = (
        0 < len(cmd_id) <= 64 and all(c.isalnum() or c in "-_" for c in cmd_id) and cmd_id.isascii()
    )
    return cmd_id if ok else None
