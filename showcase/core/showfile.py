"""The show file: a TOML description of the tournament, checked before anything starts.

Every problem is reported with the file, the key and what is wrong, so that a stage
operator can fix it without reading code. The same parser reads the configuration
back out of the event log (``show_configured`` events), so the log alone rebuilds
the show.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msgspec import UNSET, UnsetType

from showcase.core.decode import given
from showcase.core.egress import (
    LOOPBACK,
    EgressPolicy,
    host_entry_problem,
    is_token_variable,
    origin_of,
)
from showcase.core.errors import ShowFileError
from showcase.core.showtables import (
    ID_PATTERN,
    BenchTable,
    CriterionTable,
    CutTable,
    JudgeTable,
    Problems,
    ProvenanceTable,
    ProxyTable,
    RevealTable,
    RoundTable,
    ShowFile,
    ShowTable,
    TeamTable,
    TokensTable,
    WeightsTable,
    nth,
)

ID_RE = re.compile(ID_PATTERN)
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
    model_name: str = ""  # the model's name as viewers read it (the lower third)

    def public(self) -> dict[str, Any]:
        """What viewers may see: no endpoint, no key name."""
        out = {
            "id": self.id,
            "name_ko": self.name_ko,
            "name_en": self.name_en,
            "org": self.org,
            "colour": self.colour,
        }
        if self.model_name:
            out["model_name"] = self.model_name
        return out

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
    # Hosts an endpoint sent at run time may be on, beside the show file's teams' hosts;
    # empty: loopback only (core/egress.py).
    allowed_hosts: tuple[str, ...] = ()


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
class ProvenanceSettings:
    """Weight provenance checks (the ``[provenance]`` table): the folders the server may
    read weights from, each team's declared weights and the named references, as absolute
    paths (relative ones are taken from the show file's folder). Not written to the log:
    each check records the files it compared and their hashes. Whether a path really lies
    under a root is checked again, symlinks resolved, when a check is asked for
    (docs/security.md)."""

    roots: tuple[str, ...] = ()
    weights: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)


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
    total_points: float = 100.0  # what the criteria should add up to (serve warns if not)
    # Each judge's own token, where the show file gives one (judge id -> token).
    judge_tokens: dict[str, str] = field(default_factory=dict, compare=False)
    # Whether one token may enter every judge's sheet ([tokens] shared_judge = true).
    shared_judge: bool = field(default=False, compare=False)
    # Seconds a command waits to be durable before a 503 ([show] command_deadline).
    command_deadline: float = field(default=2.0, compare=False)
    provenance: ProvenanceSettings = field(default_factory=lambda: ProvenanceSettings(),
                                           compare=False)

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

    def egress(self) -> EgressPolicy:
        """Where this show's server may send requests and with which key: its teams'
        hosts and ``[proxy] allowed_hosts``, each team's key variable its own."""
        entries = list(self.proxy.allowed_hosts or LOOPBACK)
        entries += [origin_of(t.endpoint)[1] for t in self.teams if t.endpoint]
        return EgressPolicy.allowing(
            entries, {t.api_key_env: t.id for t in self.teams if t.api_key_env})

    def config(self) -> dict[str, Any]:
        """The show as it goes into the log: everything but the secrets."""
        return {
            "show": {
                "title_ko": self.title_ko,
                "title_en": self.title_en,
                "precision": self.precision,
                "frame_rate": self.frame_rate,
                # Only when set: the logs of shows out of 100 stay byte for byte as they were.
                **({"total_points": self.total_points} if self.total_points != 100 else {}),
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


def parse_team(path: str, key: str, table: Any, problems: Problems | None = None
               ) -> Team:
    """A team's table (the show file's, a replacement's, or the log's); every problem is
    reported at once, unless ``problems`` collects them for a whole file."""
    mine = problems or Problems(path)
    read = mine.read(key, table, TeamTable)
    if problems is None:
        mine.raise_any()
    if read is None:
        return Team("", "", "", "", "")  # never used: the file's problems are raised
    return _team(read)


def _team(read: TeamTable) -> Team:
    return Team(read.id, read.name_ko, read.name_en, read.org, read.colour, read.endpoint,
                read.api_key_env, read.model, read.model_name.strip())


def _criterion(problems: Problems, key: str, table: Any, judges: tuple[Judge, ...]
               ) -> Criterion | None:
    c = problems.read(key, table, CriterionTable)
    if c is None:
        return None
    name_ko = given(c.name_ko, "").strip() or c.id
    name_en = given(c.name_en, "").strip() or c.id
    maximum = given(c.maximum, c.points if c.normalise == "points" else 100.0)
    good = True
    if c.normalise == "linear" and maximum <= c.baseline:
        problems.add(f"{key}.maximum", f"must be more than baseline ({c.baseline:g})")
        good = False
    default_scale = [0, c.points] if c.normalise == "points" else [min(0.0, c.baseline), maximum]
    scale = given(c.scale, default_scale)
    if (
        len(scale) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
        or scale[0] >= scale[1]
    ):
        problems.add(f"{key}.scale", "must be [lowest, highest] with lowest below highest")
        good = False
    elif c.normalise == "points" and (scale[0] < 0 or scale[1] > c.points):
        problems.add(f"{key}.scale",
                     f"must lie within 0..points ({c.points:g}) when values are points")
        good = False
    if c.source == "judges" and not judges:
        problems.add(f"{key}.source", "is 'judges' but the show file has no [[judges]]")
        good = False
    if c.trim and c.source != "judges":
        problems.add(f"{key}.trim", "only a criterion with source = 'judges' can be trimmed")
        good = False
    if not good:
        return None
    return Criterion(c.id, name_ko, name_en, c.points, c.normalise, c.baseline, maximum,
                     (float(scale[0]), float(scale[1])), c.source, c.trim)


def _round(problems: Problems, key: str, table: Any, criteria: tuple[Criterion, ...]
           ) -> Round | None:
    r = problems.read(key, table, RoundTable)
    if r is None:
        return None
    before = len(problems.found)
    cut_table = given(r.cut, CutTable())
    kinds = [k for k in ("eliminate_bottom", "advance", "below")
             if getattr(cut_table, k) is not UNSET]
    cut = CutRule("none")
    if len(kinds) > 1:
        problems.add(f"{key}.cut",
                     f"give one of eliminate_bottom, advance, below, not {' and '.join(kinds)}")
    elif kinds:
        value = getattr(cut_table, kinds[0])
        if kinds[0] != "below" and (value < 0 or value != int(value)):
            problems.add(f"{key}.cut.{kinds[0]}", "must be a whole number, 0 or more")
        cut = CutRule(kinds[0], value)
    known = {cr.id for cr in criteria}
    tie_break = given(r.tie_break, [cr.id for cr in criteria])
    for i, name in enumerate(tie_break):
        if name not in known:
            problems.add(nth(f"{key}.tie_break", i),
                         f"{name!r} is not a criterion (criteria: {', '.join(sorted(known))})")
    reveal = given(r.reveal, RevealTable())
    order = given(reveal.order, list(REVEAL_ORDER))
    where = f"{key}.reveal"
    for i, section in enumerate(order):
        if section not in REVEAL_ORDER:
            problems.add(nth(f"{where}.order", i), f"{section!r} is not a section of the reveal "
                         f"({', '.join(REVEAL_ORDER)})")
        elif section in order[:i]:
            problems.add(nth(f"{where}.order", i), f"{section!r} is listed twice")
    for section in REVEAL_REQUIRED:
        if section not in order:
            problems.add(f"{where}.order", f"must include {section!r}")
    for section in ("cut", "eliminations", "survivors"):
        if (section in order and "points" in order
                and order.index(section) < order.index("points")):
            problems.add(f"{where}.order", f"{section!r} cannot come before 'points': it "
                         "would give the results away")
    if len(problems.found) > before:
        return None
    return Round(r.id, given(r.name_ko, "").strip() or r.id,
                 given(r.name_en, "").strip() or r.id, cut, tuple(tie_break), tuple(order),
                 reveal.points)


def parse_show(data: Any, path: str = "<show>") -> Show:
    """Build a Show from the TOML structure (or the same structure read back from the log).
    Every problem of the file is reported in one ShowFileError, each with its key."""
    problems = Problems(path)
    problems.order = list(data) if isinstance(data, dict) else []
    top = problems.read("", data, ShowFile, partial=True)
    if top is None:
        problems.raise_any()
    assert top is not None
    meta = given(top.show, None) or ShowTable()
    tokens_table = given(top.tokens, None) or TokensTable()
    tokens = {role: getattr(tokens_table, role) for role in ROLES_WITH_TOKENS}
    for role, token in tokens.items():
        if token and len(token) < 12:
            problems.add(f"tokens.{role}",
                         "must be at least 12 characters (or left out to generate one)")

    judges = [problems.read(nth("judges", i), table, JudgeTable)
              for i, table in enumerate(top.judges)]
    good_judges = tuple(Judge(j.id, j.name) for j in judges if j is not None)
    _unique(problems, "judges", [j.id if j else None for j in judges])
    judge_tokens = {j.id: j.token for j in judges if j is not None and j.token}
    for i, judge in enumerate(judges):
        if judge is not None and judge.token and len(judge.token) < 12:
            problems.add(f"judges[{i}].token",
                         "must be at least 12 characters (or left out to generate one)")
    if tokens["judge"] and not tokens_table.shared_judge:
        problems.add("tokens.judge", "is one token for every judge's sheet: allow it with "
                     "shared_judge = true, or give each judge their own token")

    if not top.teams:
        problems.add("teams", "needs at least one [[teams]] entry")
    teams = [problems.read(nth("teams", i), t, TeamTable) for i, t in enumerate(top.teams)]
    _unique(problems, "teams", [t.id if t else None for t in teams])
    _key_variables(problems, teams)

    default_criteria = (DEFAULT_CRITERIA if top.judges else
                        [c for c in DEFAULT_CRITERIA if c.get("source") != "judges"])
    criteria_tables = given(top.criteria, default_criteria)
    if not criteria_tables:
        problems.add("criteria", "needs at least one [[criteria]] entry")
    criteria = [_criterion(problems, nth("criteria", i), c, good_judges)
                for i, c in enumerate(criteria_tables)]
    good_criteria = tuple(c for c in criteria if c is not None)
    _unique(problems, "criteria", [c.id if c else None for c in criteria])

    round_tables = given(top.rounds, [{"id": "r1", "name_ko": "1차 평가",
                                       "name_en": "Round 1"}])
    if not round_tables:
        problems.add("rounds", "needs at least one [[rounds]] entry")
    rounds = [_round(problems, nth("rounds", i), r, good_criteria)
              for i, r in enumerate(round_tables)]
    _unique(problems, "rounds", [r.id if r else None for r in rounds])
    proxy = _proxy(problems, given(top.proxy, None) or ProxyTable())
    bench = _bench(problems, path, top.bench, good_criteria)
    provenance = _provenance(problems, path, top.provenance,
                             {t.id for t in teams if t is not None})
    problems.raise_any()
    return Show(meta.title_ko, meta.title_en,
                tuple(_team(t) for t in teams if t is not None),
                good_criteria, tuple(r for r in rounds if r is not None), good_judges,
                meta.precision, float(meta.frame_rate), tokens, path, proxy, bench,
                float(meta.total_points), judge_tokens, tokens_table.shared_judge,
                float(meta.command_deadline), provenance)


def _key_variables(problems: Problems, teams: list[TeamTable | None]) -> None:
    """Each team's key in a variable of its own, never one of showcase's tokens: the
    server sends a team's key to that team (core/egress.py)."""
    owners: dict[str, str] = {}
    for i, team in enumerate(teams):
        if team is None or not team.api_key_env:
            continue
        name, key = team.api_key_env, f"teams[{i}].api_key_env"
        if is_token_variable(name):
            problems.add(key, f"{name!r} holds a showcase token, not a team's key")
        elif name in owners:
            problems.add(key, f"{name!r} is the key of team {owners[name]!r} already; "
                         "each team needs its own")
        owners.setdefault(name, team.id)


def _unique(problems: Problems, key: str, ids: list[str | None]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident is None:
            continue
        if ident in seen:
            problems.add(f"{nth(key, i)}.id", f"{ident!r} is used twice")
        seen.add(ident)


BENCH_CATEGORIES = ("comprehension", "problem_solving", "writing")


def _bench(problems: Problems, path: str, table: BenchTable | UnsetType,
           criteria: tuple[Criterion, ...]) -> BenchSettings:
    default = BenchSettings()
    if table is UNSET:
        return default
    base = Path(path).parent if path and not path.startswith("<") else Path(".")
    suites = tuple(str(base / entry) if not Path(entry).is_absolute() else entry
                   for entry in table.suites)
    criterion = given(table.criterion, default.criterion)
    if criterion not in {c.id for c in criteria}:
        problems.add("bench.criterion", f"{criterion!r} is not a criterion of this show "
                     f"({', '.join(c.id for c in criteria)})")
    weights_table = given(table.weights, WeightsTable())
    weights = {c: float(getattr(weights_table, c)) for c in BENCH_CATEGORIES
               if getattr(weights_table, c) is not UNSET}
    if weights and not any(weights.values()):
        problems.add("bench.weights", "cannot all be 0")
    return BenchSettings(suites, criterion, weights,
                         given(table.concurrency, default.concurrency),
                         given(table.retries, default.retries))


def _provenance(problems: Problems, path: str, table: ProvenanceTable | UnsetType,
                team_ids: set[str]) -> ProvenanceSettings:
    if table is UNSET:
        return ProvenanceSettings()
    base = Path(path).parent if path and not path.startswith("<") else Path(".")
    roots = tuple(str(base / r) for r in table.roots)
    if not roots and (table.weights or table.references):
        problems.add("provenance.roots", "is needed: the folders weights may be read from")

    def placed(key: str, entry: str) -> str:
        full = base / entry
        if roots and not any(_lexically_under(full, Path(r)) for r in roots):
            problems.add(key, f"{entry!r} is under none of provenance.roots")
        return str(full)

    for team in table.weights:
        if team not in team_ids:
            problems.add(f"provenance.weights.{team}", "is not a team of this show")
    weights = {t: placed(f"provenance.weights.{t}", p) for t, p in table.weights.items()}
    references = {n: placed(f"provenance.references.{n}", p)
                  for n, p in table.references.items()}
    return ProvenanceSettings(roots, weights, references)


def _lexically_under(path: Path, root: Path) -> bool:
    """Under ``root`` as written (``..`` taken away); symlinks are resolved at check time."""
    return Path(posixpath.normpath(path)).is_relative_to(posixpath.normpath(root))


def _proxy(problems: Problems, table: ProxyTable) -> ProxySettings:
    default = ProxySettings()
    values = {f: getattr(table, f) for f in table.__struct_fields__
              if getattr(table, f) is not UNSET}
    changes: dict[str, Any] = {k: float(v) if isinstance(getattr(default, k), float) else v
                               for k, v in values.items()}
    hosts = changes.get("allowed_hosts", [])
    for i, entry in enumerate(hosts):
        if problem := host_entry_problem(entry):
            problems.add(f"proxy.allowed_hosts[{i}]", problem)
    changes["allowed_hosts"] = tuple(hosts)
    settings = dataclasses.replace(default, **changes)
    if 0 < settings.health_interval <= settings.health_timeout:
        problems.add("proxy.health_timeout", "must be shorter than health_interval")
    return settings


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
