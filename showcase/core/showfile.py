"""The show file: a TOML description of the tournament, checked before anything starts.

Every problem is reported with the file, the key and what is wrong, so that a stage
operator can fix it without reading code. The same parser reads the configuration
back out of the event log (``show_configured`` events), so the log alone rebuilds
the show.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from showcase.core.errors import ShowFileError

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

NORMALISATIONS = ("linear", "relative", "points")
SOURCES = ("value", "judges")
ROLES_WITH_TOKENS = ("operator", "presenter", "judge")


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name_ko: str
    name_en: str
    org: str
    colour: str
    endpoint: str = ""
    api_key_env: str = ""
    model: str = ""  # the model name the endpoint serves; learnt from GET /models if empty

    def public(self) -> dict[str, Any]:
        """What viewers may see: no endpoint, no key name."""
        return {
            "id": self.id,
            "name_ko": self.name_ko,
            "name_en": self.name_en,
            "org": self.org,
            "colour": self.colour,
        }

    def config(self) -> dict[str, Any]:
        out = self.public()
        if self.endpoint:
            out["endpoint"] = self.endpoint
        if self.api_key_env:
            out["api_key_env"] = self.api_key_env
        if self.model:
            out["model"] = self.model
        return out


@dataclass(frozen=True, slots=True)
class Judge:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Criterion:
    """One scored part of a round, worth up to ``points`` points.

    Raw values (or judges' sheets) inside ``scale`` become points by ``normalise``:
    ``linear`` maps ``baseline``..``maximum`` onto 0..points (below baseline is 0),
    ``relative`` gives the best team full points and the others in proportion, and
    ``points`` takes the value as points.
    """

    id: str
    name_ko: str
    name_en: str
    points: float
    normalise: str = "points"
    baseline: float = 0.0
    maximum: float = 0.0
    scale: tuple[float, float] = (0.0, 0.0)
    source: str = "value"
    trim: bool = False

    def config(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name_ko": self.name_ko,
            "name_en": self.name_en,
            "points": self.points,
            "normalise": self.normalise,
            "baseline": self.baseline,
            "maximum": self.maximum,
            "scale": list(self.scale),
            "source": self.source,
            "trim": self.trim,
        }


@dataclass(frozen=True, slots=True)
class CutRule:
    """Who leaves at the end of a round: the bottom ``count``, all but the top ``count``,
    or everyone whose total is below ``threshold``."""

    kind: str  # "eliminate_bottom" | "advance" | "below" | "none"
    value: float = 0.0

    def config(self) -> dict[str, Any]:
        return {} if self.kind == "none" else {self.kind: self.value}

    def describe(self) -> str:
        if self.kind == "eliminate_bottom":
            return f"the bottom {int(self.value)} leave"
        if self.kind == "advance":
            return f"the top {int(self.value)} advance"
        if self.kind == "below":
            return f"a total below {self.value:g} leaves"
        return "nobody leaves"


# The reveal's sections, in their default order (reveal.py); a round's [rounds.reveal]
# table may reorder them or leave out the optional ones.
REVEAL_ORDER = ("title", "status", "points", "cut", "eliminations", "survivors")
REVEAL_REQUIRED = ("points", "eliminations")
REVEAL_POINTS = ("team", "criterion", "total")


@dataclass(frozen=True, slots=True)
class Round:
    id: str
    name_ko: str
    name_en: str
    cut: CutRule
    tie_break: tuple[str, ...] = ()
    reveal_order: tuple[str, ...] = REVEAL_ORDER
    reveal_points: str = "team"

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name_ko": self.name_ko,
            "name_en": self.name_en,
            "cut": self.cut.config(),
            "tie_break": list(self.tie_break),
        }
        if self.reveal_order != REVEAL_ORDER or self.reveal_points != "team":
            out["reveal"] = {"order": list(self.reveal_order), "points": self.reveal_points}
        return out


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """How the server talks to the teams' endpoints (the ``[proxy]`` table).

    Operational settings, not facts of the show: they are not written to the log, so
    tuning a timeout between rehearsals does not add a show_configured event.
    """

    connect_timeout: float = 3.0       # opening a connection to a team
    first_token_timeout: float = 30.0  # from the request to the first token
    idle_timeout: float = 15.0         # longest silence between two chunks
    total_timeout: float = 180.0       # a whole answer
    max_connections: int = 16          # per team, so a slow team cannot starve the others
    max_answer_bytes: int = 4 * 1024 * 1024
    max_answer_tokens: int = 16384
    health_interval: float = 5.0       # seconds between checks of each team's /models; 0: none
    health_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """Benchmark runs (the ``[bench]`` table): where the suites are, how results count.

    Like ``[proxy]``, not written to the log: each run records the suites it ran (with a
    digest of each file), and the scores it enters say how they were computed.
    """

    suites: tuple[str, ...] = ()        # files or folders; empty: the suites shipped with showcase
    criterion: str = "benchmark"        # the criterion the results are entered into
    weights: dict[str, float] = field(default_factory=dict)  # per category; default equal
    concurrency: int = 4                # items in flight per team
    retries: int = 2                    # more tries for an item whose request failed


@dataclass(frozen=True, slots=True)
class Show:
    title_ko: str
    title_en: str
    teams: tuple[Team, ...]
    criteria: tuple[Criterion, ...]
    rounds: tuple[Round, ...]
    judges: tuple[Judge, ...] = ()
    precision: int = 2
    frame_rate: float = 10.0
    tokens: dict[str, str] = field(default_factory=dict, compare=False)
    path: str = field(default="<show>", compare=False)
    proxy: ProxySettings = field(default_factory=lambda: ProxySettings(), compare=False)
    bench: BenchSettings = field(default_factory=lambda: BenchSettings(), compare=False)

    # Plain loops, not next(generator): criterion() runs for every score entered.
    def team(self, team_id: str) -> Team | None:
        for team in self.teams:
            if team.id == team_id:
                return team
        return None

    def criterion(self, criterion_id: str) -> Criterion | None:
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        return None

    def round(self, round_id: str) -> Round | None:
        for rnd in self.rounds:
            if rnd.id == round_id:
                return rnd
        return None

    def config(self) -> dict[str, Any]:
        """The show as it goes into the log: everything but the secrets."""
        return {
            "show": {
                "title_ko": self.title_ko,
                "title_en": self.title_en,
                "precision": self.precision,
                "frame_rate": self.frame_rate,
            },
            "judges": [{"id": j.id, "name": j.name} for j in self.judges],
            "teams": [t.config() for t in self.teams],
            "criteria": [c.config() for c in self.criteria],
            "rounds": [r.config() for r in self.rounds],
        }


DEFAULT_CRITERIA: list[dict[str, Any]] = [
    {"id": "benchmark", "name_ko": "벤치마크", "name_en": "Benchmarks", "points": 40,
     "normalise": "linear", "baseline": 0, "maximum": 100, "scale": [0, 100]},
    {"id": "expert", "name_ko": "전문가 평가", "name_en": "Expert review", "points": 35,
     "normalise": "linear", "baseline": 0, "maximum": 100, "scale": [0, 100],
     "source": "judges", "trim": True},
    {"id": "feedback", "name_ko": "사용자 평가", "name_en": "User feedback", "points": 25,
     "normalise": "linear", "baseline": 1, "maximum": 5, "scale": [1, 5]},
]


class _Reader:
    """Reads one table of the show file, reporting problems with the full key path."""

    def __init__(self, path: str, key: str, table: Any) -> None:
        self.path = path
        self.key = key
        if not isinstance(table, dict):
            raise self.error(f"must be a table, not {_kind(table)}")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def error(self, problem: str, key: str = "") -> ShowFileError:
        full = f"{self.key}.{key}" if self.key and key else (key or self.key)
        return ShowFileError(self.path, full, problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.error("is missing", key)
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(f"must be {_names(kinds)}, not a boolean", key)
        if not isinstance(value, kinds):
            raise self.error(f"must be {_names(kinds)}, not {_kind(value)}", key)
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if isinstance(value, str):
            value = value.strip()
            if not value and default is ...:
                raise self.error("must not be empty", key)
        return value  # type: ignore[no-any-return]

    def number(self, key: str, default: Any = ...) -> float:
        return float(self.get(key, (int, float), default))

    def ident(self, key: str = "id") -> str:
        value = self.text(key)
        if not ID_RE.match(value):
            raise self.error(
                f"{value!r} is not a valid id (lower-case letters, digits, '-' or '_', "
                "at most 32)", key
            )
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used)) or "none"
            raise self.error(f"unknown key (known keys here: {known})", unknown[0])


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _names(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true or false",
             list: "an array", dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _array(reader: _Reader, key: str, default: Any = ...) -> list[Any]:
    return list(reader.get(key, list, default))


def _unique(path: str, key: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise ShowFileError(path, f"{key}[{i}].id", f"{ident!r} is used twice")
        seen.add(ident)


def parse_team(path: str, key: str, table: Any) -> Team:
    r = _Reader(path, key, table)
    team = Team(
        id=r.ident(),
        name_ko=r.text("name_ko"),
        name_en=r.text("name_en"),
        org=r.text("org", ""),
        colour=r.text("colour", "#888888"),
        endpoint=r.text("endpoint", ""),
        api_key_env=r.text("api_key_env", ""),
        model=r.text("model", ""),
    )
    if not COLOUR_RE.match(team.colour):
        raise r.error(f"{team.colour!r} is not a colour like '#a50034'", "colour")
    if team.endpoint and not team.endpoint.startswith(("http://", "https://")):
        raise r.error(f"{team.endpoint!r} must start with http:// or https://", "endpoint")
    if team.api_key_env and not ENV_RE.match(team.api_key_env):
        raise r.error(
            f"{team.api_key_env!r} is not an environment variable name (like TEAM_LG_KEY)",
            "api_key_env",
        )
    r.finish()
    return team


def _criterion(path: str, key: str, table: Any, judges: tuple[Judge, ...]) -> Criterion:
    r = _Reader(path, key, table)
    ident = r.ident()
    name_ko = r.text("name_ko", ident)
    name_en = r.text("name_en", ident)
    points = r.number("points")
    if points <= 0:
        raise r.error("must be more than 0", "points")
    normalise = r.text("normalise", "points")
    if normalise not in NORMALISATIONS:
        raise r.error(f"{normalise!r} is not one of {', '.join(NORMALISATIONS)}", "normalise")
    baseline = r.number("baseline", 0.0)
    maximum = r.number("maximum", points if normalise == "points" else 100.0)
    if normalise == "linear" and maximum <= baseline:
        raise r.error(f"must be more than baseline ({baseline:g})", "maximum")
    default_scale = [0, points] if normalise == "points" else [min(0.0, baseline), maximum]
    scale = _array(r, "scale", default_scale)
    if (
        len(scale) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
        or scale[0] >= scale[1]
    ):
        raise r.error("must be [lowest, highest] with lowest below highest", "scale")
    if normalise == "points" and (scale[0] < 0 or scale[1] > points):
        raise r.error(f"must lie within 0..points ({points:g}) when values are points", "scale")
    source = r.text("source", "value")
    if source not in SOURCES:
        raise r.error(f"{source!r} is not one of {', '.join(SOURCES)}", "source")
    if source == "judges" and not judges:
        raise r.error("is 'judges' but the show file has no [[judges]]", "source")
    trim = r.get("trim", bool, False)
    if trim and source != "judges":
        raise r.error("only a criterion with source = 'judges' can be trimmed", "trim")
    r.finish()
    return Criterion(ident, name_ko, name_en, points, normalise, baseline, maximum,
                     (float(scale[0]), float(scale[1])), source, trim)


def _round(path: str, key: str, table: Any, criteria: tuple[Criterion, ...]) -> Round:
    r = _Reader(path, key, table)
    ident = r.ident()
    cut_table = r.get("cut", dict, {})
    c = _Reader(path, f"{key}.cut", cut_table)
    kinds = [k for k in ("eliminate_bottom", "advance", "below") if k in cut_table]
    if len(kinds) > 1:
        raise c.error(f"give one of eliminate_bottom, advance, below, not {' and '.join(kinds)}")
    cut = CutRule("none")
    if kinds:
        value = c.number(kinds[0])
        if kinds[0] != "below" and (value < 0 or value != int(value)):
            raise c.error("must be a whole number, 0 or more", kinds[0])
        cut = CutRule(kinds[0], value)
    c.finish()
    known = {cr.id for cr in criteria}
    tie_break = _array(r, "tie_break", [cr.id for cr in criteria])
    for i, name in enumerate(tie_break):
        if name not in known:
            raise r.error(
                f"{name!r} is not a criterion (criteria: {', '.join(sorted(known))})",
                f"tie_break[{i}]"
            )
    reveal = _Reader(path, f"{key}.reveal", r.get("reveal", dict, {}))
    order = _array(reveal, "order", list(REVEAL_ORDER))
    for i, section in enumerate(order):
        if section not in REVEAL_ORDER:
            raise reveal.error(f"{section!r} is not a section of the reveal "
                               f"({', '.join(REVEAL_ORDER)})", f"order[{i}]")
        if section in order[:i]:
            raise reveal.error(f"{section!r} is listed twice", f"order[{i}]")
    for section in REVEAL_REQUIRED:
        if section not in order:
            raise reveal.error(f"must include {section!r}", "order")
    for section in ("cut", "eliminations", "survivors"):
        if section in order and order.index(section) < order.index("points"):
            raise reveal.error(f"{section!r} cannot come before 'points': it would give the "
                               "results away", "order")
    points = reveal.text("points", "team")
    if points not in REVEAL_POINTS:
        raise reveal.error(f"{points!r} is not one of {', '.join(REVEAL_POINTS)} (a step per "
                           "team and criterion, per criterion, or per team)", "points")
    reveal.finish()
    rnd = Round(ident, r.text("name_ko", ident), r.text("name_en", ident), cut, tuple(tie_break),
                tuple(order), points)
    r.finish()
    return rnd


def parse_show(data: Any, path: str = "<show>") -> Show:
    """Build a Show from the TOML structure (or the same structure read back from the log)."""
    top = _Reader(path, "", data)
    meta = _Reader(path, "show", top.get("show", dict, {}))
    title_ko = meta.text("title_ko", "소버린 AI 경연")
    title_en = meta.text("title_en", "Sovereign AI Showcase")
    precision = int(meta.number("precision", 2))
    if not 0 <= precision <= 6:
        raise meta.error("must be between 0 and 6", "precision")
    frame_rate = meta.number("frame_rate", 10)
    if not 1 <= frame_rate <= 60:
        raise meta.error("must be between 1 and 60 frames a second", "frame_rate")
    meta.finish()

    tokens_r = _Reader(path, "tokens", top.get("tokens", dict, {}))
    tokens = {role: tokens_r.text(role, "") for role in ROLES_WITH_TOKENS}
    for role, token in tokens.items():
        if token and len(token) < 12:
            raise tokens_r.error(
                "must be at least 12 characters (or left out to generate one)", role)
    tokens_r.finish()

    judges: list[Judge] = []
    for i, table in enumerate(_array(top, "judges", [])):
        jr = _Reader(path, f"judges[{i}]", table)
        judges.append(Judge(jr.ident(), jr.text("name", "")))
        jr.finish()
    _unique(path, "judges", [j.id for j in judges])

    team_tables = _array(top, "teams")
    if not team_tables:
        raise ShowFileError(path, "teams", "needs at least one [[teams]] entry")
    teams = tuple(parse_team(path, f"teams[{i}]", t) for i, t in enumerate(team_tables))
    _unique(path, "teams", [t.id for t in teams])

    criteria = tuple(
        _criterion(path, f"criteria[{i}]", c, tuple(judges))
        for i, c in enumerate(_array(top, "criteria", DEFAULT_CRITERIA if judges else
                                     [c for c in DEFAULT_CRITERIA if c.get("source") != "judges"]))
    )
    if not criteria:
        raise ShowFileError(path, "criteria", "needs at least one [[criteria]] entry")
    _unique(path, "criteria", [c.id for c in criteria])

    first_round = {"id": "r1", "name_ko": "1차 평가", "name_en": "Round 1"}
    round_tables = _array(top, "rounds", [first_round])
    if not round_tables:
        raise ShowFileError(path, "rounds", "needs at least one [[rounds]] entry")
    rounds = tuple(_round(path, f"rounds[{i}]", r, criteria) for i, r in enumerate(round_tables))
    _unique(path, "rounds", [r.id for r in rounds])
    proxy = _proxy(path, top.get("proxy", dict, {}))
    bench = _bench(path, top.get("bench", dict, {}), criteria)
    top.finish()
    return Show(title_ko, title_en, teams, criteria, rounds, tuple(judges), precision,
                frame_rate, tokens, path, proxy, bench)


BENCH_CATEGORIES = ("comprehension", "problem_solving", "writing")


def _bench(path: str, table: dict[str, Any], criteria: tuple[Criterion, ...]) -> BenchSettings:
    r = _Reader(path, "bench", table)
    default = BenchSettings()
    base = Path(path).parent if path and not path.startswith("<") else Path(".")
    suites = []
    for i, entry in enumerate(_array(r, "suites", [])):
        if not isinstance(entry, str) or not entry.strip():
            raise r.error("must be a file or folder name", f"suites[{i}]")
        suites.append(str(base / entry) if not Path(entry).is_absolute() else entry)
    criterion = r.text("criterion", default.criterion)
    if table and criterion not in {c.id for c in criteria}:
        raise r.error(f"{criterion!r} is not a criterion of this show "
                      f"({', '.join(c.id for c in criteria)})", "criterion")
    weights_r = _Reader(path, "bench.weights", r.get("weights", dict, {}))
    weights = {}
    for category in BENCH_CATEGORIES:
        if category in weights_r.table:
            weight = weights_r.number(category)
            if not 0 <= weight <= 1000:
                raise weights_r.error("must be from 0 to 1000", category)
            weights[category] = weight
    weights_r.finish()
    if weights and not any(weights.values()):
        raise r.error("cannot all be 0", "weights")
    counts = {}
    for name, top in (("concurrency", 256), ("retries", 10)):
        value = r.number(name, getattr(default, name))
        low = 1 if name == "concurrency" else 0
        if value != int(value) or not low <= value <= top:
            raise r.error(f"must be a whole number from {low} to {top}", name)
        counts[name] = int(value)
    r.finish()
    return BenchSettings(tuple(suites), criterion, weights, **counts)


def _proxy(path: str, table: dict[str, Any]) -> ProxySettings:
    r = _Reader(path, "proxy", table)
    default = ProxySettings()
    seconds: dict[str, Any] = {}
    for name in ("connect_timeout", "first_token_timeout", "idle_timeout", "total_timeout",
                 "health_interval", "health_timeout"):
        value = r.number(name, getattr(default, name))
        if name == "health_interval" and value == 0:
            pass  # no health checks: a show whose endpoints are not up (a scoring rehearsal)
        elif not 0 < value <= 3600:
            raise r.error("must be more than 0 and at most 3600 seconds", name)
        seconds[name] = float(value)
    counts: dict[str, Any] = {}
    for name, top in (("max_connections", 1024), ("max_answer_bytes", 1 << 30),
                      ("max_answer_tokens", 1 << 20)):
        value = r.number(name, getattr(default, name))
        if value != int(value) or not 1 <= value <= top:
            raise r.error(f"must be a whole number from 1 to {top}", name)
        counts[name] = int(value)
    if 0 < seconds["health_interval"] <= seconds["health_timeout"]:
        raise r.error("must be shorter than health_interval", "health_timeout")
    r.finish()
    return dataclasses.replace(default, **seconds, **counts)


def load_show(path: str | Path) -> Show:
    """Read and check a show file; a ShowFileError names the file, the key and the problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ShowFileError(name, "", f"cannot be read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ShowFileError(name, "", f"is not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ShowFileError(name, "", f"is not valid TOML: {exc}") from exc
    return parse_show(data, name)


def sample_show_path() -> Path:
    """The sample show shipped with the package: the five teams of the first round."""
    return Path(__file__).parents[1] / "sample" / "show.toml"
