"""A request body decoded into its declared type, with refusals in the house's words.

A body's shape is a msgspec ``Struct`` (core/bodies.py): the one description from which
the checks, the error messages and the API's JSON Schema (/openapi.json) all come. Its
refusals are reworded here from msgspec's, naming the field by its JSON path:
``field 'tasks.kmmlu.baseline' must be from 0 to below 1, not 1.5``. Below the state (the
show file's reader uses it too), so it knows nothing of the show.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType
from msgspec import inspect as mi

from showcase.core.errors import BadRequest
from showcase.core.text import TextRule, clean

TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "true or false",
              list: "an array", dict: "an object", type(None): "null"}
# msgspec's names of JSON types, in a refusal's words
WANTED = {"str": "a string", "int": "a whole number", "float": "a number", "null": "null",
          "bool": "true or false", "array": "an array", "object": "an object"}

B = TypeVar("B")


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """A request body: unknown fields are refused, so a typo is never silently ignored,
    and every free-text field (declared with ``free_text``) is normalised and checked
    by the text rules (core/text.py) as it is decoded."""

    def __post_init__(self) -> None:
        fields = _TEXT_FIELDS.get(type(self))
        for name, rule in text_fields(type(self)) if fields is None else fields:
            value = getattr(self, name)
            # Printable ASCII within its length passes as it is (clean's own first test),
            # without a call: this runs for every command.
            if type(value) is str and not (value.isascii() and value.isprintable()
                                           and len(value) <= rule.max_length):
                setattr(self, name, clean(name, value, rule))


_TEXT_FIELDS: dict[type, tuple[tuple[str, TextRule], ...]] = {}


def text_fields(kind: type[msgspec.Struct]) -> tuple[tuple[str, TextRule], ...]:
    """The free-text fields of a body type and their rules, found once per type."""
    found = _TEXT_FIELDS.get(kind)
    if found is None:
        found = _TEXT_FIELDS[kind] = tuple(
            (field.name, rule) for field in msgspec.structs.fields(kind)
            if (rule := _text_rule(mi.type_info(field.type))) is not None)
    return found


def _text_rule(info: Any) -> TextRule | None:
    if isinstance(info, mi.UnionType):  # str | UnsetType
        return next((r for t in info.types if (r := _text_rule(t)) is not None), None)
    if isinstance(info, mi.Metadata) and info.extra:
        rule = info.extra.get("text")
        return rule if isinstance(rule, TextRule) else None
    return None


def decode_body(body: Any, kind: type[B]) -> B:
    """``body`` (parsed JSON) as ``kind``, or a 400 that names the field and the problem.
    A body already of ``kind`` (checked at the web edge) passes through as it is."""
    if isinstance(body, kind):
        return body
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise body_error(str(exc), body, kind) from None


_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>.*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPE = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_CONSTRAINT = re.compile(r"^Expected `[^`]+` (?:>|<|of length|matching)")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.*)$")


def body_error(message: str, body: Any, kind: type) -> BadRequest:
    """A msgspec ValidationError's message, said in the house's words with the field's path:
    what is wrong, and in ``detail`` what would be right."""
    found = _AT.match(message)
    assert found is not None  # the pattern matches any text
    problem, raw_path = found["problem"], found["path"] or ""
    names, value, info = _walk(raw_path, body, mi.type_info(kind))
    where = _path_text(names)
    if (m := _UNKNOWN.match(problem)) is not None:
        return BadRequest(f"unknown field {_join(where, m['name'])!r}",
                          _fields(info))
    if (m := _MISSING.match(problem)) is not None:
        return BadRequest(f"field {_join(where, m['name'])!r} is missing", _fields(info))
    if (m := _TYPE.match(problem)) is not None:
        if not where:
            return BadRequest("the body must be a JSON object", f"got {_words(m['got'])}")
        wanted = _want_words(m["want"])
        got = (repr(value) if isinstance(value, float) and m["want"] == "int"
               else str(value).lower() if isinstance(value, bool)
               else type_name(value))  # 53.0 or true says more than "a number"
        return BadRequest(f"field {where!r} must be {wanted}, not {got}")
    if (m := _ENUM.match(problem)) is not None:
        allowed = ", ".join(str(v) for v in getattr(_bare(info), "values", ()))
        return BadRequest(f"field {where!r} must be one of {allowed}, not {value!r}")
    if _CONSTRAINT.match(problem):
        return BadRequest(f"field {where!r} {limits(_bare(info), value)}", _description(info))
    return BadRequest(f"field {where!r}: {problem}" if where else problem)


def _walk(raw_path: str, body: Any, info: Any) -> tuple[list[str], Any, Any]:
    """The path's parts as names, the value there in the body and its declared type.
    msgspec writes an object's key as ``[...]``; the key is found again in the body: the
    first whose value the declared type refuses."""
    names: list[str] = []
    value: Any = body
    for part in _PATH_PART.finditer(raw_path):
        info = _bare(info)
        name, index = part.group(1), part.group(2)
        if name is not None:
            names.append(f".{name}")
            value = value.get(name) if isinstance(value, dict) else None
            info = next((f.type for f in getattr(info, "fields", ()) if f.encode_name == name),
                        None)
        elif index == "...":
            key, value = _failing_item(value, info)
            names.append(f".{key}" if key is not None else "[...]")
            info = getattr(info, "value_type", None)
        else:
            names.append(f"[{index}]")
            value = (value[int(index)] if isinstance(value, list) and int(index) < len(value)
                     else None)
            info = getattr(info, "item_type", None)
    return names, value, info


def _failing_item(value: Any, info: Any) -> tuple[str | None, Any]:
    kind = getattr(_bare(getattr(info, "value_type", None)), "cls", None)
    if isinstance(value, dict) and kind is not None:
        for key, item in value.items():
            try:
                msgspec.convert(item, kind)
            except msgspec.ValidationError:
                return str(key), item
    return None, None


def _bare(info: Any) -> Any:
    return info.type if isinstance(info, mi.Metadata) else info


def _description(info: Any) -> str:
    if isinstance(info, mi.Metadata) and info.extra_json_schema:
        return str(info.extra_json_schema.get("description", ""))
    return ""


def _path_text(names: list[str]) -> str:
    return "".join(names).removeprefix(".")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _fields(info: Any) -> str:
    info = _bare(info)
    if not getattr(info, "forbid_unknown_fields", False):
        return ""  # a body that passes other fields on (the proxy's) has no list to give
    return "allowed fields: " + ", ".join(f.encode_name for f in info.fields)


def _words(msgspec_type: str) -> str:
    return WANTED.get(msgspec_type, msgspec_type)


def _want_words(want: str) -> str:
    parts = [p for p in want.split(" | ") if p != "float" or "int" not in want.split(" | ")]
    words = ["a number" if p == "int" and "float" in want else _words(p) for p in parts]
    return " or ".join(dict.fromkeys(words))


def limits(info: Any, value: Any) -> str:
    """A constraint of msgspec's type ``info``, in words, with the value that broke it."""
    if isinstance(info, mi.IntType | mi.FloatType):
        low = (f"at least {info.ge:g}" if info.ge is not None
               else f"more than {info.gt:g}" if info.gt is not None else "")
        high = (f"at most {info.le:g}" if info.le is not None
                else f"less than {info.lt:g}" if info.lt is not None else "")
        if info.ge is not None and high:  # the usual case reads best as a range
            rule = f"from {info.ge:g} to {'' if info.le is not None else 'below '}" + (
                f"{info.le if info.le is not None else info.lt:g}")
        else:
            rule = " and ".join(p for p in (low, high) if p)
        return f"must be {rule}, not {value!r}"
    if isinstance(info, mi.ListType | mi.StrType | mi.DictType):
        unit = "characters" if isinstance(info, mi.StrType) else "items"
        if info.min_length == 1 and info.max_length is None:
            return "must not be empty"
        if info.max_length is not None and len(value) > info.max_length:
            return f"is too long ({len(value)} {unit}, at most {info.max_length})"
        return f"is too short ({len(value)} {unit}, at least {info.min_length})"
    return "is not allowed here"


def type_name(value: Any) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def given(value: B | UnsetType, default: B) -> B:
    """A field that may be left out: its value, or ``default``."""
    return default if value is UNSET else value


