"""The show file's tables as declared types, and a reader that reports every problem.

Each TOML table is a msgspec ``Struct``: its keys, their types, their patterns and ranges.
msgspec stops at a document's first error, and a stage operator fixing a file wants them
all, so ``Problems.read`` checks a table key by key against the declared type of each key,
reports each problem with the file and the full key (``teams[2].colour``), and gives back
the table (an instance of its Struct) only when all of its keys are right. What relates one
key to another (maximum above baseline, a tie-break naming a criterion) is checked in
showfile.py on the tables that were read.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType
from msgspec import inspect as mi

from showcase.core.decode import limits
from showcase.core.errors import ShowFileError

T = TypeVar("T", bound=msgspec.Struct)

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
Id = Annotated[str, Meta(pattern=ID_PATTERN, extra={"problem": "{value!r} is not a valid id "
                         "(lower-case letters, digits, '-' or '_', at most 32)"})]
Text = Annotated[str, Meta(pattern=r"\S", extra={"problem": "must not be empty"})]
Colour = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$",
                             extra={"problem": "{value!r} is not a colour like '#a50034'"})]
Endpoint = Annotated[str, Meta(pattern=r"^(https?://.*)?$", extra={
    "problem": "{value!r} must start with http:// or https://"})]
EnvName = Annotated[str, Meta(pattern=r"^([A-Z_][A-Z0-9_]*)?$", extra={
    "problem": "{value!r} is not an environment variable name (like TEAM_LG_KEY)"})]
Number = int | float


class Table(msgspec.Struct, forbid_unknown_fields=True):
    """A table of the show file."""


class ShowTable(Table):
    title_ko: Text = "소버린 AI 경연"
    title_en: Text = "Sovereign AI Showcase"
    precision: Annotated[int, Meta(ge=0, le=6)] = 2
    frame_rate: Annotated[float, Meta(ge=1, le=60, description="frames a second")] = 10.0
    total_points: Annotated[float, Meta(gt=0, le=10000, description=(
        "the points a round is out of; serve warns when the criteria add up to more or less"
    ))] = 100.0
    # Seconds a command may wait for the log to make it durable before it is answered 503.
    command_deadline: Annotated[float, Meta(gt=0, le=60)] = 2.0


class TokensTable(Table):
    operator: str = ""
    presenter: str = ""
    judge: str = ""  # one token for every judge: accepted only with shared_judge = true
    shared_judge: bool = False


class JudgeTable(Table):
    id: Id
    name: str = ""
    token: str = ""  # this judge's own; else SHOWCASE_JUDGE_TOKEN_<ID>, else generated


class TeamTable(Table):
    id: Id
    name_ko: Text
    name_en: Text
    org: str = ""
    colour: Colour = "#888888"
    endpoint: Endpoint = ""
    api_key_env: EnvName = ""
    model: str = ""
    # The model's name as viewers read it (the lower third): "EXAONE 4.0", not the API's id.
    model_name: Annotated[str, Meta(max_length=64)] = ""


class CriterionTable(Table):
    id: Id
    points: Annotated[float, Meta(gt=0)]
    name_ko: str | UnsetType = UNSET
    name_en: str | UnsetType = UNSET
    normalise: Literal["linear", "relative", "points"] = "points"
    baseline: float = 0.0
    maximum: float | UnsetType = UNSET
    scale: list[Any] | UnsetType = UNSET
    source: Literal["value", "judges"] = "value"
    trim: bool = False


class CutTable(Table):
    eliminate_bottom: float | UnsetType = UNSET
    advance: float | UnsetType = UNSET
    below: float | UnsetType = UNSET


class RevealTable(Table):
    order: list[str] | UnsetType = UNSET
    points: Annotated[Literal["team", "criterion", "total"], Meta(extra={
        "hint": "a step per team and criterion, per criterion, or per team"})] = "team"


class RoundTable(Table):
    id: Id
    name_ko: str | UnsetType = UNSET
    name_en: str | UnsetType = UNSET
    cut: CutTable | UnsetType = UNSET
    tie_break: list[str] | UnsetType = UNSET
    reveal: RevealTable | UnsetType = UNSET


Seconds = Annotated[float, Meta(gt=0, le=3600)]


class ProxyTable(Table):
    connect_timeout: Seconds | UnsetType = UNSET
    first_token_timeout: Seconds | UnsetType = UNSET
    idle_timeout: Seconds | UnsetType = UNSET
    total_timeout: Seconds | UnsetType = UNSET
    # 0: no health checks (a scoring rehearsal, with no endpoint up)
    health_interval: Annotated[float, Meta(ge=0, le=3600)] | UnsetType = UNSET
    health_timeout: Seconds | UnsetType = UNSET
    max_connections: Annotated[int, Meta(ge=1, le=1024)] | UnsetType = UNSET
    max_answer_bytes: Annotated[int, Meta(ge=1, le=1 << 30)] | UnsetType = UNSET
    max_answer_tokens: Annotated[int, Meta(ge=1, le=1 << 20)] | UnsetType = UNSET
    # hosts an endpoint sent at run time may be on (core/egress.py)
    allowed_hosts: list[str] | UnsetType = UNSET


Weight = Annotated[float, Meta(ge=0, le=1000)]


class WeightsTable(Table):
    comprehension: Weight | UnsetType = UNSET
    problem_solving: Weight | UnsetType = UNSET
    writing: Weight | UnsetType = UNSET


class BenchTable(Table):
    suites: list[Text] = []
    criterion: str | UnsetType = UNSET
    weights: WeightsTable | UnsetType = UNSET
    concurrency: Annotated[int, Meta(ge=1, le=256)] | UnsetType = UNSET
    retries: Annotated[int, Meta(ge=0, le=10)] | UnsetType = UNSET


class ProvenanceTable(Table):
    # folders the server may read model weights from; every path below lies under one
    roots: list[Text] = []
    weights: dict[str, Text] = {}  # team id -> the weights the team declared
    references: dict[str, Text] = {}  # a reference's name -> its weights


class ShowFile(Table):
    """The whole file: ``[show]``, ``[tokens]``, ``[[teams]]``, ..."""

    teams: list[Any]  # each read as a TeamTable (and the judges, criteria, rounds alike)
    show: ShowTable | UnsetType = UNSET
    tokens: TokensTable | UnsetType = UNSET
    judges: list[Any] = []
    criteria: list[Any] | UnsetType = UNSET
    rounds: list[Any] | UnsetType = UNSET
    proxy: ProxyTable | UnsetType = UNSET
    bench: BenchTable | UnsetType = UNSET
    provenance: ProvenanceTable | UnsetType = UNSET


TOML_KINDS = {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
              int: "an integer", float: "a number"}
WANTED = {"str": "a string", "int": "a whole number", "float": "a number",
          "bool": "true or false", "array": "an array", "object": "a table", "null": "left out"}


def nth(key: str, index: int) -> str:
    """The key of a list's item, counted from 1 as a person counts the tables of a file:
    ``teams[3]`` is the third [[teams]] table (issue 20)."""
    return f"{key}[{index + 1}]"


class Problems:
    """Every problem found in one show file; raised together at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: list[tuple[str, str]] = []
        self.order: list[str] = []  # the file's top-level keys, in the file's order

    def add(self, key: str, problem: str) -> None:
        self.found.append((key, problem))

    def raise_any(self) -> None:
        """Raise every problem found, in the order of the file's tables."""
        if self.found:
            def place(problem: tuple[str, str]) -> int:
                top = problem[0].split(".")[0].split("[")[0]
                return self.order.index(top) if top in self.order else len(self.order)
            raise ShowFileError.many(self.path, sorted(self.found, key=place))

    def read(self, key: str, value: Any, kind: type[T], partial: bool = False) -> T | None:
        """``value`` as the table ``kind``, or None once its problems are reported.
        ``partial``: the keys that are right all the same, the others left at their
        defaults (the file's top, so that one bad table hides no problem of the others)."""
        if not isinstance(value, dict):
            self.add(key, f"must be a table, not {kind_of(value)}")
            return None
        fields = msgspec.structs.fields(kind)
        names = [f.encode_name for f in fields]
        good = True
        for unknown in sorted(set(value) - set(names)):
            self.add(join(key, unknown), f"unknown key (known keys here: "
                     f"{', '.join(sorted(names))})")
            good = False
        checked: dict[str, Any] = {}
        for field in fields:
            if field.encode_name not in value:
                if field.required:
                    self.add(join(key, field.encode_name), "is missing")
                    good = False
                continue
            ok, checked[field.name] = self._value(join(key, field.encode_name),
                                                  value[field.encode_name], field.type)
            if not ok:
                del checked[field.name]
                good = False
        if partial and all(f.name in checked for f in fields if f.required):
            return kind(**checked)
        return kind(**checked) if good else None

    def _value(self, key: str, value: Any, declared: Any) -> tuple[bool, Any]:
        table = _table_type(declared)
        if table is not None:
            read = self.read(key, value, table)
            return read is not None, read
        if isinstance(value, str):
            value = value.strip()  # a stray space is no reason to stop a show
        try:
            return True, msgspec.convert(value, declared)
        except msgspec.ValidationError as exc:
            self.add(*self._reworded(key, str(exc), value, declared))
            return False, None

    def _reworded(self, key: str, message: str, value: Any, declared: Any
                  ) -> tuple[str, str]:
        problem, _, at = message.partition(" - at `$")
        if at:  # an item of an array: "[2]`"
            index = int(at.strip("[]`"))
            key, value = nth(key, index), value[index]
            declared = (typing.get_args(_bare(declared)) or (Any,))[0]
        extra = _extra(declared)
        if problem.startswith("Expected `") and ", got `" in problem:
            want = problem.split("`")[1].split(" | ")
            words = " or ".join(dict.fromkeys(
                "a number" if w in ("int", "float") and "float" in want else WANTED.get(w, w)
                for w in want if w != "null"))
            return key, f"must be {words}, not {kind_of(value)}"
        if problem.startswith("Invalid enum value"):
            allowed = ", ".join(typing.get_args(_bare(declared)))
            hint = f" ({extra['hint']})" if "hint" in extra else ""
            return key, f"{value!r} is not one of {allowed}{hint}"
        if "problem" in extra:
            return key, str(extra["problem"]).format(value=value)
        return key, limits(_constraints(declared), value)


def join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def kind_of(value: Any) -> str:
    return TOML_KINDS.get(type(value), type(value).__name__)


def _bare(declared: Any) -> Any:
    """The type without Annotated, and without UnsetType in a union."""
    if typing.get_origin(declared) is Annotated:
        return _bare(typing.get_args(declared)[0])
    if typing.get_origin(declared) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(declared) if a is not UnsetType]
        if len(args) == 1:
            return _bare(args[0])
    return declared


def _table_type(declared: Any) -> type[Table] | None:
    bare = _bare(declared)
    return bare if isinstance(bare, type) and issubclass(bare, Table) else None


def _extra(declared: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for arg in typing.get_args(declared):
        if isinstance(arg, Meta) and arg.extra:
            found.update(arg.extra)
        elif typing.get_origin(arg) is Annotated:
            found.update(_extra(arg))
    return found


def _constraints(declared: Any) -> Any:
    info = mi.type_info(declared)  # UnsetType leaves no trace in it
    return info.type if isinstance(info, mi.Metadata) else info
