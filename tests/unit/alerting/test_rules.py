"""Rules files: the default set loads; each kind of mistake fails naming file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting import RuleError, default_rules_dir, load_rules
from tests.unit.alerting.kit import drain, rules, toilet

GOOD_TIER = "{tier: yellow, raise: {above: 0.7}, clear: {below: 0.6}}"


def _one_rule(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nkind: drain\nrules:\n  - name: drain.test\n    category: overload\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines()),
        encoding="utf-8",
    )
    return path


def test_the_default_rule_set_loads_one_file_per_kind() -> None:
    rs = load_rules(default_rules_dir())
    files = {Path(r.source).name for r in rs}
    assert files == {"drain.yaml", "toilet.yaml", "garbage.yaml", "rain.yaml", "device.yaml"}
    names = [r.name for r in rs]
    assert len(names) == len(set(names))
    assert {"drain.overflow", "drain.overload", "device.silent", "garbage.fire"} <= set(names)


def test_selectors_pick_devices_by_registry_attributes() -> None:
    rs = load_rules(default_rules_dir())
    class1 = {r.name for r in rs.for_device(toilet(toilet_class=1.0))}
    class3 = {r.name for r in rs.for_device(toilet(toilet_class=3.0))}
    assert "toilet.nh3.class1" in class1
    assert "toilet.nh3.class3" not in class1
    assert "toilet.nh3.class3" in class3
    assert "drain.overflow" in {r.name for r in rs.for_device(drain())}
    assert "device.silent" in class1  # kind "*"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (f"metric: fill_ratio\ncolour: red\ntiers: [{GOOD_TIER}]", "colour", "unknown field"),
        ("metric: fill_ratio\ntiers: [{tier: yellow, raise: {above: high}}]",
         "tiers[0].raise.above", "valid number"),
        ("metric: fill_ratio\ntiers: [{tier: yellow, raise: {above: 0.7}, count: three}]",
         "tiers[0].count", "valid integer"),
        ("metric: fill_ratio\ntiers: [{tier: yellow, raise: {above: 0.7}, for: soon}]",
         "tiers[0].for", "duration"),
        ("metric: fill_ratio\ntiers: [{tier: purple, raise: {above: 0.7}}]",
         "tiers[0].tier", "'blue', 'yellow', 'orange' or 'red'"),
    ],
)  # fmt: skip
def test_a_field_error_names_file_rule_and_field(
    tmp_path: Path, body: str, field: str, says: str
) -> None:
    path = _one_rule(tmp_path, body)
    with pytest.raises(RuleError) as err:
        load_rules(path)
    text = str(err.value)
    assert str(path) in text
    assert "rule 'drain.test'" in text
    assert f"field '{field}'" in text
    assert says in text


def test_an_unknown_metric_for_the_kind_is_refused(tmp_path: Path) -> None:
    path = _one_rule(tmp_path, f"metric: nh3_mgm3\ntiers: [{GOOD_TIER}]")
    with pytest.raises(RuleError, match=r"bad.yaml: rule 'drain.test': field 'metric': unknown "
                       r"metric 'nh3_mgm3' for kind 'drain'"):  # fmt: skip
        load_rules(path)


def test_an_unknown_metric_inside_a_condition_is_refused(tmp_path: Path) -> None:
    body = (
        "metric: fill_ratio\ntiers: [{tier: yellow, raise: {all: [{metric: bogus_m, above: 1}]}}]"
    )
    with pytest.raises(RuleError, match=r"field 'tiers\[0\].raise.all\[0\].metric'.*'bogus_m'"):
        load_rules(_one_rule(tmp_path, body))


@pytest.mark.parametrize(
    ("tiers_yaml", "says"),
    [
        ("[{tier: orange, raise: {above: 1.0}}, {tier: yellow, raise: {above: 0.7}}]",
         r"out of order \(orange -> yellow\)"),
        ("[{tier: yellow, raise: {above: 0.7}}, {tier: yellow, raise: {above: 0.9}}]",
         r"out of order \(yellow -> yellow\)"),
        ("[{tier: yellow, raise: {above: 0.9}}, {tier: red, raise: {above: 0.7}}]",
         r"tiers out of order: red above 0.7 is less severe than yellow above 0.9"),
    ],
)  # fmt: skip
def test_tiers_out_of_order_are_refused(tmp_path: Path, tiers_yaml: str, says: str) -> None:
    with pytest.raises(RuleError, match=says) as err:
        load_rules(_one_rule(tmp_path, f"metric: fill_ratio\ntiers: {tiers_yaml}"))
    assert "rule 'drain.test'" in str(err.value)


CONTRADICTION = (
    "{tier: yellow, raise: {above: 0.7}, "
    "clear: {all: [{at_least: 0.5}, {at_most: 0.5}, {below: 0.5}]}}"
)


@pytest.mark.parametrize(
    ("tier", "says"),
    [
        ("{tier: yellow, raise: {above: 0.7}, clear: {above: 0.8}}", "inverted hysteresis"),
        ("{tier: yellow, raise: {above: 0.7}, clear: {below: 0.8}}", "inverted hysteresis"),
        ("{tier: yellow, raise: {at_least: 0.7}, clear: {at_most: 0.7}}", "inverted hysteresis"),
        ("{tier: yellow, raise: {below: 0.2}, clear: {below: 0.1}}", "inverted hysteresis"),
        ("{tier: yellow, raise: {above: 0.7}, clear: {below: 0.0}}", "outside the metric's range"),
        # However deep the offending part sits (found by an audit: these were accepted):
        ("{tier: yellow, raise: {above: 0.7}, clear: {any: [{above: 0.8}]}}",
         "inverted hysteresis"),
        ("{tier: yellow, raise: {above: 0.7}, clear: {any: [{below: 0.6}, {above: 0.8}]}}",
         "fill_ratio in (0.8, "),
        ("{tier: yellow, raise: {above: 0.7}, clear: {all: [{below: 0.6}, {above: 0.8}]}}",
         "contradict each other"),
        ("{tier: yellow, raise: {above: 0.7}, clear: {metric: level_m, below: -1}}",
         "outside the metric's range (level_m -0.5..30)"),
        (CONTRADICTION, "contradict each other"),
    ],
)  # fmt: skip
def test_a_clear_condition_that_can_never_hold_is_refused(
    tmp_path: Path, tier: str, says: str
) -> None:
    path = _one_rule(tmp_path, f"metric: fill_ratio\ntiers: [{tier}]")
    with pytest.raises(RuleError, match="clear condition can never hold") as err:
        load_rules(path)
    text = str(err.value)
    assert says in text
    assert str(path) in text
    assert "rule 'drain.test'" in text
    assert "field 'tiers[0].clear'" in text


@pytest.mark.parametrize(
    "clear",
    [
        "{any: [{below: 0.6}, {metric: level_m, below: 0.1}]}",  # another metric: its own say
        "{all: [{below: 0.6}, {at_least: 0.0}]}",
        "{any: [{at_most: 0.7}, {all: [{below: 0.65}, {rain: {over: 10m, below_mmh: 1}}]}]}",
    ],
)
def test_composite_clears_the_right_way_round_are_accepted(tmp_path: Path, clear: str) -> None:
    tier = f"{{tier: yellow, raise: {{above: 0.7}}, clear: {clear}}}"
    (rule,) = load_rules(_one_rule(tmp_path, f"metric: fill_ratio\ntiers: [{tier}]"))
    assert rule.name == "drain.test"


def test_hysteresis_the_right_way_round_is_accepted(tmp_path: Path) -> None:
    rs = rules(
        tmp_path,
        f"""
        version: 1
        kind: drain
        rules:
          - name: drain.ok
            category: overload
            metric: fill_ratio
            tiers: [{GOOD_TIER}, {{tier: red, raise: {{above: 1.0}}, clear: {{at_most: 1.0}}}}]
    """,
    )
    assert [t.tier for t in rs.rules[0].rule.tiers] == ["yellow", "red"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 1\nrules:\n  - {name: x.y, category: device, metric: level_m, tiers: []}",
         "field 'kind'"),
        ("version: 1\nkind: sewer\nrules:\n  - {name: x.y, category: device}",
         "unknown kind 'sewer'"),
        ("version: 2\nkind: drain\nrules: []", "field 'version'"),
        ("version: 1\nkind: drain\nrules: [{name: x.y, category: device, metric: level_m}]",
         "needs at least one tier"),
        ("version: 1\nkind: drain\nrules: [{name: x.y, category: device, type: stuck}]",
         "field 'metrics'"),
        (("version: 1\nkind: drain\nrules: [{name: x.y, kind: '*', category: device, "
          "type: stuck, metrics: [level_m]}]"), "only for silent and offline"),
        ("version: 1\nkind: [drain\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_file_level_mistakes_are_named(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=says) as err:
        load_rules(path)
    assert str(path) in str(err.value)


def test_a_name_used_twice_across_files_names_both(tmp_path: Path) -> None:
    body = (
        "version: 1\nkind: drain\nrules:\n"
        "  - {name: d.x, category: device, type: stuck, metrics: [level_m]}\n"
    )
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RuleError, match=r"b.yaml: rule 'd.x': name already used in .*a.yaml"):
        load_rules(tmp_path)


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such rules file"):
        load_rules(tmp_path / "nope.yaml")
