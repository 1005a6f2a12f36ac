"""Hygiene between evaluation and notification: silences, flapping, ids.

As in Alertmanager's pipeline, each stage is small: a silence mutes notification (the alert still
changes state for the map); flapping holds an alert at its highest tier and mutes it until it
calms down; ids are hashes of the input, so a replay yields the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from alerting._model import Flapping
from alerting._state import RuleState


@dataclass(frozen=True, slots=True)
class Silence:
    """Maintenance: mutes notifications of matching alerts from ``starts_s`` until ``ends_s``.

    Every part given must match; give at least one of ``device_id``, ``district``, ``rule``.
    """

    ends_s: float
    device_id: str | None = None
    district: str | None = None
    rule: str | None = None
    starts_s: float = 0.0
    comment: str = ""

    def __post_init__(self) -> None:
        if self.device_id is None and self.district is None and self.rule is None:
            raise ValueError("a silence names a device_id, a district or a rule")
        if not self.ends_s > self.starts_s:
            raise ValueError(f"a silence must end after it starts ({self.starts_s}..{self.ends_s})")

    def mutes(self, device_id: str, district: str, rule: str, t_s: float) -> bool:
        """Whether this silence mutes ``rule`` on ``device_id`` at event time ``t_s``."""
        return (
            self.starts_s <= t_s < self.ends_s
            and self.device_id in (None, device_id)
            and self.district in (None, district)
            and self.rule in (None, rule)
        )


def stable_id(prefix: str, *parts: object) -> str:
    """A short id that depends only on ``parts``."""
    text = "\x1f".join(str(p) for p in parts)
    return f"{prefix}-{hashlib.blake2b(text.encode(), digest_size=10).hexdigest()}"


def note_change(state: RuleState, ts: int, spec: Flapping) -> None:
    """Record a change of target tier and update ``state.flapping`` (Kapacitor-style).

    An alert starts flapping at ``spec.changes`` changes within ``spec.window`` and stops when
    the window holds at most half as many.
    """
    window_ms = int(spec.window * 1000)
    state.changes = [c for c in state.changes if ts - c < window_ms]
    state.changes.append(ts)
    refresh_flapping(state, ts, spec)


def refresh_flapping(state: RuleState, ts: int, spec: Flapping) -> None:
    """Let the flapping window slide to ``ts``."""
    window_ms = int(spec.window * 1000)
    if state.changes and ts - state.changes[0] >= window_ms:
        state.changes = [c for c in state.changes if ts - c < window_ms]
    n = len(state.changes)
    if not state.flapping and n >= spec.changes:
        state.flapping = True
    elif state.flapping and n <= spec.changes // 2:
        state.flapping = False
