"""Settings validated with msgspec (the edge agent's, where pydantic costs too much memory),
with errors in the same words as :mod:`telemetry_core.settings`.

msgspec reports the first problem as ``Expected `int` >= 1 - at `$.edge.max_inflight```; this
module turns that into a :class:`~telemetry_core.config_rules.Problem` (``edge.max_inflight:
want at least 1``) placed by :meth:`~telemetry_core.config_rules.Layers.error` at the variable
or the file line that set it, with "did you mean" for an unknown key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec

from telemetry_core.config_rules import Layers, Problem, unknown_key

T = TypeVar("T")

_AT: Final = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_PART: Final = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<key>[^`]+)`")
_MISSING: Final = re.compile(r"Object missing required field `(?P<key>[^`]+)`")
_TYPE: Final = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_BOUND: Final = re.compile(r"Expected `[^`]+` (?P<op>>=|<=|>|<) (?P<limit>\S+)")
_ENUM: Final = re.compile(r"Invalid enum value (?P<value>.+)")
_WORDS: Final = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "object": "a table",
    "array": "an array",
    "null": "nothing",
}
_OPS: Final = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}
_ANY: Final = "[...]"
_SECRET_KEYS: Final = frozenset({"password", "token"})


def convert_settings(
    layers: Layers, cls: type[T], dec_hook: Callable[[type, Any], Any] | None = None
) -> T:
    """``layers.data`` as ``cls``; ``ConfigError`` in the words every command uses."""
    try:
        return msgspec.convert(layers.data, cls, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        problem = problem_of(cls, str(exc))
        raise layers.error([_with_value(problem, layers.data)]) from exc


def _with_value(problem: Problem, data: Any) -> Problem:
    """Place and word a problem by the values it is about.

    A section's own check (``__post_init__``) is reported at the section; when its message
    starts with one of the section's keys, or quotes one of its values, it is about that key
    (and maybe the variable that set it).
    ``got a string`` becomes ``got 'abc'``: environment values are all strings.
    """
    for part in problem.loc:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict):
        return _about_key(problem, data)
    secret = bool(problem.loc) and problem.loc[-1] in _SECRET_KEYS
    if problem.message.endswith("got a string") and isinstance(data, str) and not secret:
        return Problem(problem.loc, problem.message.removesuffix("a string") + repr(data[:60]))
    return problem


def _about_key(problem: Problem, section: dict[str, Any]) -> Problem:
    dotted = ".".join(str(p) for p in problem.loc)
    for key in section:
        for head in (f"{dotted}.{key} ", f"{key} "):
            if problem.message.startswith(head):
                return Problem((*problem.loc, key), problem.message.removeprefix(head))
    quoted = [k for k, v in section.items() if isinstance(v, str) and repr(v) in problem.message]
    return Problem((*problem.loc, quoted[0]), problem.message) if len(quoted) == 1 else problem


def problem_of(cls: type, text: str) -> Problem:
    """The :class:`Problem` a msgspec ``ValidationError`` message describes."""
    match = _AT.fullmatch(text)
    message, path = (match["message"], match["path"] or "") if match else (text, "")
    parts = tuple(name or f"[{index}]" for name, index in _PART.findall(path))
    loc = tuple(p for p in parts if not p.startswith("["))
    if unknown := _UNKNOWN.fullmatch(message):
        known = _field_names(_type_at(cls, parts))
        return Problem((*loc, unknown["key"]), unknown_key(unknown["key"], known))
    if missing := _MISSING.fullmatch(message):
        what = "required" if loc else f"required: add the [{missing['key']}] section"
        return Problem((*loc, missing["key"]), what)
    return Problem(loc, _plain(message, _type_at(cls, parts)))


def _plain(message: str, type_info: Any) -> str:
    if wrong := _TYPE.fullmatch(message):
        got = _WORDS.get(wrong["got"], wrong["got"])
        return f"want {_WORDS.get(wrong['want'], wrong['want'])}, got {got}"
    if bound := _BOUND.fullmatch(message):
        return f"want {_OPS[bound['op']]} {bound['limit']}"
    if enum := _ENUM.fullmatch(message):
        allowed = _choices(type_info)
        return f"want one of {allowed}, got {enum['value']}" if allowed else message
    return message


def _type_at(cls: type, parts: tuple[str, ...]) -> Any:
    """The ``msgspec.inspect`` type at a path (``[...]`` steps into a dict's values)."""
    import msgspec.inspect as mi  # only on the error path: it costs memory on a device

    current: Any = mi.type_info(cls)
    for part in parts:
        current = _unwrap(current)
        if isinstance(current, mi.StructType) and not part.startswith("["):
            field = next((f for f in current.fields if f.encode_name == part), None)
            current = field.type if field is not None else None
        elif isinstance(current, mi.DictType) and part == _ANY:
            current = current.value_type
        else:
            return None
    return _unwrap(current)


def _unwrap(type_info: Any) -> Any:
    import msgspec.inspect as mi

    if isinstance(type_info, mi.UnionType):
        return next((t for t in type_info.types if not isinstance(t, mi.NoneType)), None)
    return type_info


def _field_names(type_info: Any) -> list[str]:
    import msgspec.inspect as mi

    return [f.encode_name for f in type_info.fields] if isinstance(type_info, mi.StructType) else []


def _choices(type_info: Any) -> str:
    import msgspec.inspect as mi

    if isinstance(type_info, mi.LiteralType):
        values = [str(v) for v in type_info.values]
    elif isinstance(type_info, mi.EnumType):
        values = [str(m.value) for m in type_info.cls]
    else:
        return ""
    return ", ".join(repr(v) for v in values)
