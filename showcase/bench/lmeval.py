"""Benchmark results computed elsewhere: lm-evaluation-harness's results JSON, imported
as a sealed ``bench_imported`` event and the benchmark score it enters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from showcase.bench import suites as bn
from showcase.core import commands
from showcase.core import events as ev
from showcase.core.bodies import ExpectSeq, Reason
from showcase.core.checks import check_expected_seq, known_round, known_team
from showcase.core.decode import Body, decode_body
from showcase.core.errors import InvalidRequest, StateConflict
from showcase.core.showfile import BenchSettings
from showcase.core.state import State
from showcase.core.text import MAX_NAME, free_text


class TaskSpec(Body):
    """How one task of the results counts."""

    category: Literal["comprehension", "problem_solving", "writing"]
    baseline: Annotated[float, Meta(ge=0, lt=1, description="the score of guessing (0.25 for "
                                                            "four choices)")]
    language: Annotated[str, free_text(MAX_NAME, "the language of its items, like 'ko'")] = ""
    metric: Annotated[str, Meta(description="the results' key; by default the first of "
                                            "acc,none, acc, exact_match,...")] = ""


class ImportBody(Body):
    """A team's results computed offline by lm-evaluation-harness."""

    team: str
    results: Annotated[dict[str, Any], Meta(description="the results JSON that "
                                                        "lm-evaluation-harness wrote")]
    tasks: Annotated[dict[str, TaskSpec], Meta(
        description='each task to count, e.g. {"kmmlu": {"category": "comprehension", '
                    '"baseline": 0.25, "language": "ko"}}')]
    round: str = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


METRICS = ("acc,none", "acc", "exact_match,strict-match", "exact_match,none", "exact_match")


def import_results(state: State, body: Any, settings: BenchSettings
                   ) -> tuple[tuple[str, dict[str, Any]], dict[str, Any]]:
    """A team's results computed offline by lm-evaluation-harness (its results JSON), as
    suites of this show: the bench_imported event, and the score it enters."""
    body = decode_body(body, ImportBody)
    check_expected_seq(state, body.expect_seq)
    team = known_team(state, body.team)
    found = body.results.get("results")
    if not isinstance(found, dict) or not found:
        raise InvalidRequest("'results' must be the JSON that lm-evaluation-harness wrote, with "
                             "its \"results\" object of tasks")
    samples = body.results.get("n-samples") or {}
    if not body.tasks:
        raise InvalidRequest("'tasks' is empty: name each task to count, with its category and "
                             "baseline", 'e.g. {"kmmlu": {"category": "comprehension", '
                             '"baseline": 0.25, "language": "ko"}}')
    suites: dict[str, dict[str, Any]] = {}
    for task, spec in body.tasks.items():
        where = f"tasks.{task}"
        scores = found.get(task)
        if not isinstance(scores, dict):
            raise InvalidRequest(f"task {task!r} is not in the results",
                                 f"tasks there: {', '.join(sorted(found))[:300]}")
        metric = spec.metric or next((m for m in METRICS if m in scores), None)
        value = scores.get(metric) if metric else None
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not 0 <= value <= 1):
            raise InvalidRequest(f"task {task!r} has no accuracy from 0 to 1"
                                 + (f" under {metric!r}" if metric else ""),
                                 f"name the metric in {where}.metric; it has "
                                 f"{', '.join(k for k in scores if k != 'alias')[:300]}")
        assert isinstance(metric, str)
        n = samples.get(task) if isinstance(samples, dict) else None
        n = n if isinstance(n, dict) else {}
        stderr_key = metric.replace(",", "_stderr,", 1) if "," in metric else f"{metric}_stderr"
        suites[task] = {"accuracy": float(value), "category": spec.category,
                        "baseline": float(spec.baseline), "language": spec.language,
                        "metric": metric, "items": _count(n),
                        "stderr": scores.get(stderr_key)}
    combined = bn.combine({s: {**r, "correct": r["accuracy"], "total": 1}
                           for s, r in suites.items()}, settings.weights)
    round_id = known_round(state, body.round)
    config = body.results.get("config") or {}
    source = str(config.get("model_args") or config.get("model") or "")[:200]
    event = (ev.BENCH_IMPORTED, {"team": team, "round": round_id, "suites": suites,
                                 "score": combined, "source": source,
                                 "reason": body.reason[:200]})
    crit = state.require_show().criterion(settings.criterion)
    if crit is None:
        raise StateConflict(f"this show has no criterion {settings.criterion!r} for benchmark "
                            "results", "set [bench] criterion in the show file", seq=state.seq)
    score = {"criterion": crit.id, "team": team, "round": round_id,
             "value": min(crit.scale[1], max(crit.scale[0], combined["value"])),
             "reason": "imported lm-evaluation-harness results"}
    commands.enter_score(state, "operator", score)  # checked before anything is written
    return event, score


def _count(samples: dict[str, Any]) -> int:
    value = samples.get("effective") or samples.get("original") or 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
