"""District partitions: filters, checks against the fleet, overlaps, coverage, stale filters."""

from __future__ import annotations

import pytest

from telemetry_core.errors import ConfigError, ContractError
from telemetry_core.partition import Partition, check_known, overlaps, stale_filters, uncovered
from telemetry_core.topics import Channel

TE = (Channel.TELEMETRY, Channel.EVENT)
KNOWN = {"jiaojiang", "huangyan", "luqiao"}


def test_a_partition_subscribes_per_district_and_channel_sorted() -> None:
    part = Partition(("luqiao", "huangyan"))
    assert part.districts == ("huangyan", "luqiao")
    assert part.topic_filters(TE) == [
        "xh/v1/huangyan/+/+/telemetry", "xh/v1/huangyan/+/+/event",
        "xh/v1/luqiao/+/+/telemetry", "xh/v1/luqiao/+/+/event",
    ]  # fmt: skip
    assert part.owns("luqiao")
    assert not part.owns("jiaojiang")
    assert part.describe() == "huangyan,luqiao"


def test_the_empty_partition_takes_every_district_and_can_be_shared() -> None:
    every = Partition()
    assert every.everything
    assert every.owns("anything")
    assert every.topic_filters(TE, share_group="g") == [
        "$share/g/xh/v1/+/+/+/telemetry", "$share/g/xh/v1/+/+/+/event",
    ]  # fmt: skip
    assert every.owned(KNOWN) == KNOWN


@pytest.mark.parametrize(
    ("districts", "match"),
    [(("Jiaojiang",), "lowercase"), (("a/b",), "lowercase"), (("luqiao", "luqiao"), "twice")],
)
def test_bad_districts_are_refused_when_built(districts: tuple[str, ...], match: str) -> None:
    with pytest.raises(ContractError, match=match):
        Partition(districts)


def test_unknown_districts_are_refused_with_a_suggestion() -> None:
    check_known(Partition(("luqiao",)), KNOWN, "ingest.districts")
    with pytest.raises(
        ConfigError, match=r"ingest.districts: .*'jiaojang'.*did you mean 'jiaojiang'"
    ):
        check_known(Partition(("jiaojang",)), KNOWN, "ingest.districts")


def test_overlaps_name_the_district_and_every_owner() -> None:
    plan = {"b": Partition(("luqiao", "huangyan")), "a": Partition(("jiaojiang", "luqiao"))}
    assert overlaps(plan, KNOWN) == {"luqiao": ("a", "b")}
    assert overlaps({"a": Partition(("jiaojiang",)), "b": Partition(("luqiao",))}, KNOWN) == {}
    everything = overlaps({"a": Partition(), "b": Partition(("luqiao",))}, KNOWN)
    assert everything == {"luqiao": ("a", "b")}


def test_uncovered_lists_districts_nobody_takes() -> None:
    plan = {"a": Partition(("jiaojiang",)), "b": Partition(("luqiao",))}
    assert uncovered(plan, KNOWN) == ("huangyan",)
    assert uncovered({"a": Partition()}, KNOWN) == ()


def test_stale_filters_are_every_other_layout_but_never_ours() -> None:
    ours = Partition(("luqiao",))
    stale = stale_filters(ours, (Channel.TELEMETRY,), KNOWN, group="g", shared=False)
    assert "xh/v1/luqiao/+/+/telemetry" not in stale
    expected = {"xh/v1/+/+/+/telemetry", "$share/g/xh/v1/+/+/+/telemetry",
                "xh/v1/jiaojiang/+/+/telemetry", "$share/g/xh/v1/luqiao/+/+/telemetry"}  # fmt: skip
    assert expected <= set(stale)
    assert len(stale) == len(set(stale)) == 2 * (1 + len(KNOWN)) - 1
    shared = stale_filters(Partition(), (Channel.TELEMETRY,), KNOWN, group="g", shared=True)
    assert "$share/g/xh/v1/+/+/+/telemetry" not in shared
    assert "xh/v1/+/+/+/telemetry" in shared
