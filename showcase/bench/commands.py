"""A benchmark run's commands: checked against the state, each one event, no I/O.

Starting, pausing, resuming and cancelling a run, an item scored, a team failed, a run
finished, and turning a finished run into values of the benchmark criterion (``apply``),
each suite normalised from its baseline (suites.combine). The runner (runs.py) calls them
through the engine, like the server's own commands."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType

from showcase.bench import suites as bn
from showcase.core import commands
from showcase.core import events as ev
from showcase.core.bodies import ExpectSeq, Reason
from showcase.core.checks import check_expected_seq, known_round
from showcase.core.decode import Body, decode_body, given
from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.showfile import BenchSettings
from showcase.core.state import OPEN, State

RUNNING, PAUSED = "running", "paused"
MAX_CONCURRENCY = 64


class StartBody(Body):
    """Start a benchmark run."""

    suites: Annotated[list[str], Meta(description="suite ids; by default every suite")
                      ] | UnsetType = UNSET
    teams: Annotated[list[str], Meta(description="by default every active team with an "
                                                 "endpoint")] | UnsetType = UNSET
    concurrency: Annotated[int, Meta(ge=1, le=MAX_CONCURRENCY, description="items in flight "
                                     "per team; by default the show file's")] | UnsetType = UNSET
    round: Annotated[str | None, Meta(description="the round it feeds (sealed); null: an "
                                                  "exhibition run; by default the open round")
                     ] | UnsetType = UNSET
    public: Annotated[bool, Meta(description="accuracy shown live; only for a run that "
                                             "feeds no round")] | UnsetType = UNSET
    expect_seq: ExpectSeq | UnsetType = UNSET


def start(state: State, body: Any, suites: dict[str, bn.Suite], settings: BenchSettings
          ) -> tuple[str, dict[str, Any]]:
    body = decode_body(body, StartBody)
    check_expected_seq(state, body.expect_seq)
    if state.bench_running is not None:
        run = state.benches[state.bench_running]
        raise StateConflict(f"benchmark run {run['id']} is {run['phase']}",
                            "wait for it to finish, or cancel it: POST /api/bench/cancel",
                            seq=state.seq, run=run["id"])
    chosen = given(body.suites, list(suites))
    if not chosen:
        raise InvalidRequest("field 'suites' is empty", "leave it out to run every suite")
    for sid in chosen:
        if sid not in suites:
            raise Unknown(f"unknown suite {sid!r}", f"suites: {', '.join(suites)}")
    if len(set(chosen)) != len(chosen):
        raise InvalidRequest(f"suite {next(s for s in chosen if chosen.count(s) > 1)!r} is "
                             "listed twice in 'suites'")
    teams = commands.chosen_teams(state, body.teams, "run against")
    concurrency = given(body.concurrency, settings.concurrency)
    if body.round is not UNSET:
        round_id = body.round
        if round_id is not None:
            known_round(state, round_id)
    else:
        current = state.rounds.get(state.current_round)
        round_id = state.current_round if current and current.phase == OPEN else None
    public = given(body.public, round_id is None)
    if public and round_id is not None:
        raise InvalidRequest(f"a run that feeds round {round_id!r} cannot be public: its "
                             "results are sealed until the round is revealed",
                             "send \"round\": null for an exhibition run with public accuracy")
    return ev.BENCH_STARTED, {
        "run": state.seq + 1, "suites": [suites[s].header() for s in chosen],
        "teams": list(teams), "concurrency": concurrency, "round": round_id,
        "public": public}


class ControlBody(Body):
    """Pause, resume or cancel the run in progress."""

    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


def control(state: State, action: str, body: Any) -> tuple[str, dict[str, Any]]:
    """Pause, resume or cancel the run in progress."""
    body = decode_body(body, ControlBody)
    check_expected_seq(state, body.expect_seq)
    if state.bench_running is None:
        raise StateConflict("no benchmark run is in progress", "start one: POST /api/bench",
                            seq=state.seq)
    run = state.benches[state.bench_running]
    if action == "pause" and run["phase"] == PAUSED:
        raise StateConflict(f"benchmark run {run['id']} is paused already", seq=state.seq)
    if action == "resume" and run["phase"] == RUNNING:
        raise StateConflict(f"benchmark run {run['id']} is running already", seq=state.seq)
    reason = body.reason.strip()[:200]
    kind = {"pause": ev.BENCH_PAUSED, "resume": ev.BENCH_RESUMED,
            "cancel": ev.BENCH_CANCELLED}[action]
    return kind, {"run": run["id"], "reason": reason}


def item_scored(state: State, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    run = state.benches[data["run"]]
    if run["phase"] not in (RUNNING, PAUSED):
        raise StateConflict(f"benchmark run {run['id']} is {run['phase']}")
    return ev.BENCH_ITEM, {**data, "public": run["public"]}


def team_failed(state: State, run_id: int, team: str, reason: str
                ) -> tuple[str, dict[str, Any]]:
    if run_id not in state.benches:
        raise KeyError(f"benchmark run {run_id}")
    return ev.BENCH_TEAM_FAILED, {"run": run_id, "team": team, "reason": reason}


def finished(state: State, run_id: int, weights: dict[str, float]
             ) -> tuple[str, dict[str, Any]]:
    run = state.benches[run_id]
    return ev.BENCH_FINISHED, {"run": run_id, "public": run["public"],
                               "results": results(run, weights)}


def results(run: dict[str, Any], weights: dict[str, float]) -> dict[str, Any]:
    """Each team's result per suite, and its benchmark score (0..100)."""
    out: dict[str, Any] = {}
    headers = {s["id"]: s for s in run["suites"]}
    for team, suites in run["progress"].items():
        per_suite = {}
        for sid, c in suites.items():
            graded = c["done"] - c["errors"]
            h = headers[sid]
            per_suite[sid] = {
                "correct": c["correct"], "total": c["total"], "done": c["done"],
                "errors": c["errors"], "category": h["category"], "baseline": h["baseline"],
                "accuracy": round(c["correct"] / graded, 4) if graded else None,
                "stderr": round_figure(bn.stderr(c["correct"], graded)),
            }
        score = bn.combine({s: dict(r) for s, r in per_suite.items()}, weights)
        out[team] = {"suites": per_suite, "score": score,
                     "complete": all(r["done"] == r["total"] and not r["errors"]
                                     for r in per_suite.values()),
                     "failed": run["failed"].get(team, "")}
    return out


def round_figure(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class ApplyBody(Body):
    """Enter a finished run's results as values of the benchmark criterion."""

    round: Annotated[str, Meta(description="by default the round the run fed")
                     ] | UnsetType = UNSET
    count_errors_as_wrong: Annotated[bool, Meta(description="enter the results although some "
                                                "items failed or went unanswered")] = False
    expect_seq: ExpectSeq | UnsetType = UNSET


def apply_bodies(state: State, run_id: int, body: Any, settings: BenchSettings
                 ) -> tuple[str, list[dict[str, Any]]]:
    """The scores a finished run enters: one value of the benchmark criterion per team.

    Refused while any team has errors or unanswered items, unless the operator says they
    count as wrong: a failed request is never silently a wrong answer.
    """
    body = decode_body(body, ApplyBody)
    check_expected_seq(state, body.expect_seq)
    run = state.benches.get(run_id)
    if run is None:
        raise Unknown(f"unknown benchmark run {run_id}",
                      f"runs: {', '.join(map(str, state.benches)) or 'none yet'}")
    if run["phase"] != "finished":
        raise StateConflict(f"benchmark run {run_id} is {run['phase']}; only a finished run's "
                            "results can be entered", seq=state.seq)
    if run["round"] is None and body.round is UNSET:
        raise StateConflict(f"benchmark run {run_id} feeds no round: it was an exhibition run",
                            "send 'round' to enter its results into a round all the same",
                            seq=state.seq)
    round_id = known_round(state, given(body.round, "") or run["round"])
    show = state.require_show()
    crit = show.criterion(settings.criterion)
    if crit is None:
        raise StateConflict(f"this show has no criterion {settings.criterion!r} for benchmark "
                            "results", "set [bench] criterion in the show file", seq=state.seq)
    res = results(run, settings.weights)
    lax = body.count_errors_as_wrong
    short = [f"{team} ({res[team]['failed'] or _missing(res[team])})"
             for team in run["teams"] if not res[team]["complete"]]
    if short and not lax:
        raise StateConflict(f"not every team answered every item: {', '.join(short)}",
                            "run them again, or send \"count_errors_as_wrong\": true to count "
                            "errors and unanswered items as wrong", seq=state.seq)
    bodies = []
    for team in run["teams"]:
        value = res[team]["score"]["value"]
        lo, hi = crit.scale
        bodies.append({"criterion": crit.id, "team": team, "round": round_id,
                       "value": min(hi, max(lo, value)),
                       "reason": f"benchmark run {run_id}"
                                 + (" (errors counted as wrong)" if lax and short else "")})
    for b in bodies:  # every score is checked before the first is entered
        commands.enter_score(state, "operator", b)
    return round_id, bodies


def _missing(result: dict[str, Any]) -> str:
    errors = sum(r["errors"] for r in result["suites"].values())
    left = sum(r["total"] - r["done"] for r in result["suites"].values())
    return ", ".join(p for p in (f"{errors} errors" if errors else "",
                                 f"{left} unanswered" if left else "") if p)
