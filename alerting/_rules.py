"""Load and validate rules files: a bad file fails at once, naming the file, the rule, the field.

``load_rules(paths)`` reads YAML files (or every ``*.yaml`` in a directory), checks each field
(pydantic) and then what spans fields: the kind exists, every metric is one the kind has (raw or
derived from the registry), tiers go up blue → yellow → orange → red with thresholds in the same
order, and each clear condition can hold while its raise condition does not (hysteresis the
right way round).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alerting._derived import known_kinds, metric_range
from alerting._model import Condition, Rule, RuleFile, Tier
from alerting._satisfy import alternatives, comparison, within_ranges
from alerting.errors import RuleError
from telemetry_core.registry import Device

TIER_ORDER = ("blue", "yellow", "orange", "red")


@dataclass(frozen=True, slots=True)
class LoadedRule:
    """A validated rule, its kind resolved, and the file it came from."""

    rule: Rule
    kind: str
    source: str

    @property
    def name(self) -> str:
        """The rule's name."""
        return self.rule.name

    def selects(self, device: Device) -> bool:
        """Whether this rule applies to ``device``."""
        sel = self.rule.select
        if self.kind not in (device.kind.value, "*"):
            return False
        if sel.districts and device.district not in sel.districts:
            return False
        if sel.ids and device.device_id not in sel.ids:
            return False
        return all(_attr_matches(device, k, v) for k, v in sel.attributes.items())


def _attr_matches(device: Device, key: str, want: float | str) -> bool:
    have = device.attributes.get(key)
    if isinstance(want, str) or isinstance(have, str):
        return str(have) == str(want)
    return have is not None and float(have) == float(want)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Validated rules, in file order, with unique names."""

    rules: tuple[LoadedRule, ...]

    def for_device(self, device: Device) -> list[LoadedRule]:
        """The rules that apply to ``device``."""
        return [r for r in self.rules if r.selects(device)]

    def by_name(self, name: str) -> LoadedRule | None:
        """The rule called ``name``, or ``None``."""
        return next((r for r in self.rules if r.name == name), None)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[LoadedRule]:
        return iter(self.rules)


def default_rules_dir() -> Path:
    """The directory of the default rule set shipped with the package (one file per kind)."""
    return Path(str(resources.files("alerting") / "rules"))


def load_rules(paths: Iterable[Path | str] | Path | str) -> RuleSet:
    """Load rules files (or directories of ``*.yaml``); ``RuleError`` names file, rule, field."""
    files = _expand([paths] if isinstance(paths, Path | str) else list(paths))
    loaded: list[LoadedRule] = []
    seen: dict[str, str] = {}
    for path in files:
        for item in _load_file(path):
            if item.name in seen:
                raise RuleError(
                    f"{path}: rule {item.name!r}: name already used in {seen[item.name]}"
                )
            seen[item.name] = str(path)
            loaded.append(item)
    return RuleSet(tuple(loaded))


def _expand(paths: Sequence[Path | str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise RuleError(f"{path}: no such rules file or directory")
    if not files:
        raise RuleError(f"no rules files in {', '.join(str(p) for p in paths)}")
    return files


def _load_file(path: Path) -> list[LoadedRule]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc
    try:
        parsed = RuleFile.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_describe(path, data, exc)) from exc
    out = []
    for rule in parsed.rules:
        kind = rule.kind or parsed.kind
        where = f"{path}: rule {rule.name!r}"
        if kind is None:
            raise RuleError(f"{where}: field 'kind': give it on the rule or at the top of the file")
        if kind == "*" and rule.type not in ("silent", "offline"):
            raise RuleError(f"{where}: field 'kind': '*' is only for silent and offline rules")
        if kind not in (*known_kinds(), "*"):
            raise RuleError(f"{where}: field 'kind': unknown kind {kind!r}, want {known_kinds()}")
        _check_rule(where, rule, kind)
        out.append(LoadedRule(rule, kind, str(path)))
    return out


def _describe(path: Path, data: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = list(err["loc"])
        prefix = f"{path}"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            prefix += f": rule {_rule_name(data, loc[1])!r}"
            loc = loc[2:]
        field = _field_path(loc) or "(file)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{prefix}: field {field!r}: {message} (got {err.get('input')!r})")
    return "\n".join(lines)


def _field_path(loc: list[int | str]) -> str:
    """``['tiers', 0, 'raise', 'above']`` as ``tiers[0].raise.above``: the form every message
    of the loader uses, pydantic's and our own checks' alike."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _rule_name(data: Any, index: int) -> str:
    try:
        return str(data["rules"][index]["name"])
    except (KeyError, IndexError, TypeError):
        return f"#{index + 1}"


def _check_rule(where: str, rule: Rule, kind: str) -> None:
    metrics = [m for m in (rule.metric, *rule.metrics) if m is not None]
    for m in metrics:
        _check_metric(where, "metric", kind, m)
    if rule.type == "threshold":
        if rule.metric is None:
            raise RuleError(f"{where}: field 'metric': a threshold rule needs one")
        if not rule.tiers:
            raise RuleError(f"{where}: field 'tiers': a threshold rule needs at least one tier")
        _check_tiers(where, rule, kind)
    elif rule.type in ("stuck", "out_of_range") and not rule.metrics:
        raise RuleError(
            f"{where}: field 'metrics': a {rule.type} rule lists the metrics it watches"
        )


def _check_metric(where: str, field: str, kind: str, metric: str) -> None:
    if metric_range(kind, metric) is None:
        raise RuleError(f"{where}: field {field!r}: unknown metric {metric!r} for kind {kind!r}")


def _check_tiers(where: str, rule: Rule, kind: str) -> None:
    levels = [TIER_ORDER.index(t.tier) for t in rule.tiers]
    if levels != sorted(set(levels)):
        order = " -> ".join(t.tier for t in rule.tiers)
        raise RuleError(
            f"{where}: field 'tiers': out of order ({order}); list each tier once, "
            "blue -> yellow -> orange -> red"
        )
    metric = rule.metric or ""
    previous: tuple[str, str, float] | None = None
    for i, tier in enumerate(rule.tiers):
        field = f"tiers[{i}]"
        _check_condition_metrics(where, f"{field}.raise", kind, tier.raise_)
        if tier.clear is not None:
            _check_condition_metrics(where, f"{field}.clear", kind, tier.clear)
        _check_hysteresis(where, field, kind, metric, tier)
        if tier.fault_from is not None and TIER_ORDER.index(tier.fault_from) >= levels[i]:
            raise RuleError(
                f"{where}: field '{field}.fault_from': {tier.fault_from} is not below "
                f"{tier.tier}: a failed read raises a tier from a lower one"
            )
        cmp = tier.raise_.comparator()
        if cmp is not None and (tier.raise_.metric or metric) == metric:
            current = (tier.tier, *cmp)
            _check_monotone(where, field, previous, current)
            previous = current


def _check_condition_metrics(where: str, field: str, kind: str, cond: Condition) -> None:
    for name, m in (("metric", cond.metric),
                    ("predict.metric", cond.predict.metric if cond.predict else None),
                    ("rate.metric", cond.rate.metric if cond.rate else None)):  # fmt: skip
        if m is not None:
            _check_metric(where, f"{field}.{name}", kind, m)
    for name, part in (("capacity", cond.capacity), ("head", cond.head), ("hgl", cond.hgl)):
        if part is not None and kind != "drain":
            raise RuleError(f"{where}: field '{field}.{name}': only drain rules see a network")
    for side, nb in (("downstream", cond.downstream), ("upstream", cond.upstream)):
        if nb is not None:
            if kind != "drain":
                raise RuleError(f"{where}: field '{field}.{side}': only drain rules see a network")
            _check_metric(where, f"{field}.{side}.metric", kind, nb.metric)
    for name, subs in (("all", cond.all), ("any", cond.any)):
        for j, sub in enumerate(subs):
            _check_condition_metrics(where, f"{field}.{name}[{j}]", kind, sub)


def _check_monotone(
    where: str, field: str, previous: tuple[str, str, float] | None, current: tuple[str, str, float]
) -> None:
    if previous is None or previous[1] != current[1]:
        return
    rising = current[1] in ("above", "at_least")
    if (current[2] < previous[2]) if rising else (current[2] > previous[2]):
        raise RuleError(
            f"{where}: field '{field}.raise': tiers out of order: {current[0]} "
            f"{current[1]} {current[2]:g} is less severe than {previous[0]} "
            f"{previous[1]} {previous[2]:g}"
        )


def _check_hysteresis(where: str, field: str, kind: str, metric: str, tier: Tier) -> None:
    """A clear condition must be able to hold, and (against a plain raise on one metric) only
    on the other side of it: checked on every alternative of its ``any`` and ``all``."""
    if tier.clear is None:
        return
    boxes = alternatives(tier.clear, metric)
    if boxes is None:
        return  # too many alternatives to tell: no error rather than a wrong one
    if not boxes:
        raise RuleError(
            f"{where}: field '{field}.clear': clear condition can never hold: its parts "
            "contradict each other (no value satisfies all of them)"
        )
    in_range = within_ranges(boxes, lambda m: metric_range(kind, m))
    if not in_range:
        ranges = ", ".join(
            f"{m} {lo:g}..{hi:g}"
            for m in sorted({m for b in boxes for m in b})
            if (bounds := metric_range(kind, m)) is not None
            for lo, hi in [bounds]
        )
        raise RuleError(
            f"{where}: field '{field}.clear': clear condition can never hold: what it asks is "
            f"outside the metric's range ({ranges})"
        )
    raise_cmp = tier.raise_.comparator()
    raised_on = tier.raise_.metric or metric
    if raise_cmp is None:
        return
    raising = comparison(*raise_cmp)
    rising = raise_cmp[0] in ("above", "at_least")
    for box in in_range:
        during = box.get(raised_on)
        if during is None or (during & raising).empty:
            continue
        r_op, r_v = raise_cmp
        raise RuleError(
            f"{where}: field '{field}.clear': clear condition can never hold while the alert "
            f"stands: raise {r_op} {r_v:g}, yet the clear holds for {raised_on} in {during} "
            f"(inverted hysteresis); clear {'below' if rising else 'above'} a value at or "
            f"{'under' if rising else 'over'} {r_v:g}"
        )
