"""District partitions: how instances of one MQTT consumer split the fleet without losing data.

A consumer that scales out (the ingester, the rule engine) runs several instances, each with
its own client id and persistent session (clean start off, a session expiry, QoS 1), and each
owning a disjoint set of districts. The broker keeps a persistent plain subscription across its
own restart and queues for an instance while it is down, so nothing published meanwhile is lost.
(Mosquitto 2.0.11 does not restore a ``$share/...`` subscription from persistence: what devices
publish between the broker's return and the consumer's re-subscription is dropped.)

The rules, shared by every consumer:

* a :class:`Partition` is a set of valid district names, or every district (empty);
* every district of a partition must be one the fleet knows (:func:`check_known`);
* no district may belong to two instances (:func:`overlaps`), and a plan of partitions should
  cover every district of the fleet (:func:`uncovered`): a district nobody subscribes to is not
  queued anywhere, and its messages are lost;
* an instance whose partition changed must drop the subscriptions its persistent session still
  holds from the old one (:func:`stale_filters`), or it keeps receiving those districts.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from telemetry_core.errors import ConfigError, ContractError
from telemetry_core.topics import Channel, check_district, subscription

__all__ = [
    "Partition",
    "check_known",
    "overlaps",
    "stale_filters",
    "uncovered",
]


@dataclass(frozen=True, slots=True)
class Partition:
    """The districts one instance consumes, sorted; empty means every district."""

    districts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for district in self.districts:
            check_district(district)
        repeated = sorted({d for d in self.districts if self.districts.count(d) > 1})
        if repeated:
            raise ContractError(f"district listed twice: {', '.join(repeated)}")
        object.__setattr__(self, "districts", tuple(sorted(self.districts)))

    @property
    def everything(self) -> bool:
        """Whether this partition takes every district (no list given)."""
        return not self.districts

    def owns(self, district: str) -> bool:
        """Whether messages of ``district`` belong to this partition."""
        return self.everything or district in self.districts

    def owned(self, known: Iterable[str]) -> frozenset[str]:
        """The districts of ``known`` this partition takes."""
        return frozenset(d for d in known if self.owns(d))

    def topic_filters(
        self, channels: Sequence[Channel], share_group: str | None = None
    ) -> list[str]:
        """The subscription filters: one per channel, or per district and channel."""
        if self.everything:
            return [subscription(ch, share_group=share_group) for ch in channels]
        return [
            subscription(ch, district=d, share_group=share_group)
            for d in self.districts
            for ch in channels
        ]

    def describe(self) -> str:
        """``jiaojiang,huangyan`` or ``all districts``, for logs."""
        return ",".join(self.districts) if self.districts else "all districts"


def check_known(partition: Partition, known: Collection[str], where: str) -> None:
    """``ConfigError`` naming ``where`` if ``partition`` lists a district ``known`` lacks."""
    for district in partition.districts:
        if district not in known:
            near = difflib.get_close_matches(district, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{where}: district {district!r} is not in the fleet"
                f" (its districts: {', '.join(sorted(known)) or 'none'}){hint}"
            )


def overlaps(plan: Mapping[str, Partition], known: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Districts that more than one instance of ``plan`` owns, with those instances (sorted)."""
    owners: dict[str, list[str]] = {}
    for instance, partition in sorted(plan.items()):
        for district in partition.owned(set(known) | set(partition.districts)):
            owners.setdefault(district, []).append(instance)
    return {d: tuple(names) for d, names in sorted(owners.items()) if len(names) > 1}


def uncovered(plan: Mapping[str, Partition], known: Iterable[str]) -> tuple[str, ...]:
    """Districts of ``known`` no instance of ``plan`` owns (their messages would be lost)."""
    return tuple(sorted(d for d in set(known) if not any(p.owns(d) for p in plan.values())))


def stale_filters(
    partition: Partition,
    channels: Sequence[Channel],
    known: Iterable[str],
    *,
    group: str,
    shared: bool,
) -> list[str]:
    """Filters a persistent session may hold from another partition or mode, minus ours.

    Every-district and per-district filters of ``known``, plain and shared in ``group``, that
    this partition does not subscribe to now. Unsubscribing from a filter the session lacks is
    harmless (the broker answers "no subscription existed").
    """
    groups: list[str | None] = [None, group]
    candidates = [f for g in groups for f in Partition().topic_filters(channels, g)]
    for district in sorted(set(known)):
        one = Partition((district,))
        candidates += [f for g in groups for f in one.topic_filters(channels, g)]
    ours = set(partition.topic_filters(channels, group if shared else None))
    return [f for f in dict.fromkeys(candidates) if f not in ours]
