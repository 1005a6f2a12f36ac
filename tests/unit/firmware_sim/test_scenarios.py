"""Scenario files: every built-in one loads; a bad file fails loudly, naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim import ScenarioError, list_scenarios, load_scenario

BAD_STORM = (
    "title: x\nrain: [{kind: design_storm, start_h: 0, return_period_y: -1, duration_min: 9}]"
)
REQUIRED = {
    "normal_day", "typhoon_rainstorm", "missed_collection", "sensor_faults", "district_outage",
    "festival_crowd",
}  # fmt: skip


def test_every_built_in_scenario_loads_and_is_listed() -> None:
    infos = {i.name: i for i in list_scenarios()}
    assert set(infos) >= REQUIRED
    for name, info in infos.items():
        sc = load_scenario(name)
        assert sc.name == name
        assert info.title == sc.title
        assert info.path.is_file()


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("title: Mine\nduration_h: 2\n", encoding="utf-8")
    sc = load_scenario(path)
    assert (sc.name, sc.duration_s) == ("mine", 7200.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("title: x\nbogus: 1\n", "bogus"),
        ("title: x\nsensor_faults: [{type: stuck, kinds: [toilet], metric: level_m}]\n", "level_m"),
        ("title: x\nsensor_faults: [{type: stuck, metric: level_m}]\n", "needs 'kinds'"),
        ("title: x\noutages: [{districts: [atlantis]}]\n", "atlantis"),
        ("title: x\nduration_h: 2\noutages: [{start_h: 5}]\n", "after the scenario"),
        ("title: x\nrain: [{kind: drizzle, start_h: 0}]\n", "rain.0"),
        (BAD_STORM, "return_period_y"),
        ("- just\n- a list\n", "mapping"),
        ("title: [unclosed\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_scenario_names_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.yaml") as info:
        load_scenario(path)
    assert fragment in str(info.value)


def test_unknown_scenario_lists_the_built_in_ones() -> None:
    with pytest.raises(ScenarioError, match="normal_day"):
        load_scenario("no_such_scenario")
