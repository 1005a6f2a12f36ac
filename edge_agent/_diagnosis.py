"""Telling a broker restart (or a network loss) from a refusal, so the log blames the right thing.

Mosquitto 2.0.11 sends no reason when it shuts down, when another client takes our session
over (a duplicate client id), or when it drops a client after an unauthorized QoS 0 publish:
each of them reaches paho as a lost connection ("Unspecified error"). What tells them apart is
what happens next:

* **restart or network**: reconnecting fails for a while (the broker is away), or one drop is
  followed by a connection that lasts. A warning when the connection is lost and an info
  ``mqtt_reconnected`` when it is back; nothing about ACLs or client ids.
* **refusal**: the broker answers our CONNECT with a refusal (``Not authorized``, bad user name
  or password, ...), or disconnects us with a reason that says so (``Session taken over``,
  ``Not authorized``), or drops us after refusing a publish of ours (Mosquitto does that after
  a PUBACK ``Not authorized``); or it accepts us back at once and drops us again, connection after
  connection (``UNSTABLE_AFTER`` short connections in a row, the broker reachable throughout):
  an error, with a hint naming the likely cause.

Pure: the transport feeds it what happened and logs what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

STABLE_S: Final = 10.0
"""A connection that lasted this long was healthy: losing it is not the broker refusing us."""
UNSTABLE_AFTER: Final = 2
"""Short connections in a row, with the broker reachable in between, that mean a refusal."""

_CREDENTIALS = frozenset({"Not authorized", "Bad user name or password", "Banned"})
_ACL_HINT = (
    "the broker refused something we sent and dropped us: its ACL does not let this user "
    "(mqtt.username) write our topics"
)
_BUSY = frozenset({"Server unavailable", "Server busy", "Server shutting down"})


@dataclass(frozen=True, slots=True)
class Finding:
    """What to log: an event name, its level and its fields."""

    event: str
    level: str
    fields: dict[str, object] = field(default_factory=dict)


class LinkDiagnosis:
    """Follows one client's connections and says what each loss most likely was."""

    def __init__(self) -> None:
        self._short_in_a_row = 0
        self._lost_at_s: float | None = None
        self._unreachable = False
        self._publish_refused = ""

    def publish_refused(self, reason: str) -> None:
        """The broker refused one of our publishes (PUBACK with a failure reason)."""
        self._publish_refused = reason

    def refused(self, reason: str) -> Finding:
        """The broker answered CONNECT with a refusal."""
        if reason in _BUSY:
            return Finding("mqtt_connect_refused", "warning", {"reason": reason,
                           "hint": "the broker is starting, stopping or overloaded"})  # fmt: skip
        hint = (
            "the broker refuses these credentials (mqtt.username, mqtt.password) or its ACL "
            "denies this user our last-will topic"
            if reason in _CREDENTIALS
            else "the broker refuses our CONNECT; its log says why"
        )
        return Finding("mqtt_connect_refused", "error", {"reason": reason, "hint": hint})

    def unreachable(self) -> None:
        """A connection attempt failed at the network level (refused, unreachable, time-out)."""
        self._unreachable = True
        self._short_in_a_row = 0

    def lost(self, lasted_s: float, reason: str, now_s: float) -> Finding:
        """The connection is gone after ``lasted_s`` seconds; ``reason`` as paho reports it."""
        self._lost_at_s = now_s
        self._unreachable = False
        self._short_in_a_row = self._short_in_a_row + 1 if lasted_s < STABLE_S else 0
        fields: dict[str, object] = {"reason": reason, "lasted_s": round(lasted_s, 2)}
        refusal, self._publish_refused = self._publish_refused, ""
        if refusal:
            fields.update(refused=refusal, hint=_ACL_HINT)
            return Finding("mqtt_dropped_after_refusal", "error", fields)
        if reason == "Session taken over":
            fields["hint"] = "another client connected with our client id"
            return Finding("mqtt_session_taken_over", "error", fields)
        if reason == "Not authorized":
            fields["hint"] = _ACL_HINT
            return Finding("mqtt_disconnected_not_authorized", "error", fields)
        return Finding("mqtt_connection_lost", "warning", fields)

    def connected(self, now_s: float) -> Finding | None:
        """The broker accepted a connection; what to say about the loss before it, if any."""
        if self._lost_at_s is None:
            return None
        down_s = round(now_s - self._lost_at_s, 2)
        short = self._short_in_a_row
        if not self._unreachable and short >= UNSTABLE_AFTER:
            if short & (short - 1):  # said at 2, 4, 8, ... short connections: no flood
                return None
            return Finding("mqtt_connection_unstable", "error", {
                "short_connections": short,
                "hint": "the broker accepts us and drops us again while staying reachable: "
                "most often another client uses the same client id (each takes the session "
                "from the other), or its ACL refuses what we publish or subscribe",
            })  # fmt: skip
        cause = "broker away (restart or network)" if self._unreachable else "connection dropped"
        self._lost_at_s = None
        return Finding("mqtt_reconnected", "info", {"down_s": down_s, "cause": cause})
