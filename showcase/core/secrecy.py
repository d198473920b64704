"""Secrecy: what each view may see, decided here and nowhere else.

A wrong or early reveal is a public incident, so every rule that takes something out of
what a role is shown lives in this module: what of an event each view receives (or that it
is sealed for it), which fields of a team, a criterion, a reveal step, a health check, a
demo and a benchmark run are public, and what the presenter may read ahead. The view
states (``views.py``), the event messages (``runtime/engine.py``) and the reveal script's
events (``reveal.py``) ask these functions; none of them filters on its own.

The views, from least to most privileged: ``public`` (viewers and overlays), ``judge``
(the public view and what a scoring tool needs), ``presenter`` (the public view and the
reveal read one step ahead) and ``operator`` (everything). An event that is sealed for a
view changes nothing that view shows: tests/test_secrecy.py holds that for a whole show.
"""

from __future__ import annotations

from typing import Any

from showcase.core import events as ev
from showcase.core.events import JUDGE, OPERATOR, PRESENTER, PUBLIC, Event

VIEW_OF_ROLE = {"viewer": PUBLIC, "judge": JUDGE, "presenter": PRESENTER, "operator": OPERATOR}

TEAM_FIELDS = ("id", "name_ko", "name_en", "org", "colour", "model_name")
CRITERION_FIELDS = ("id", "name_ko", "name_en", "points")
ROUND_FIELDS = ("id", "name_ko", "name_en")
# Of a reveal step: everything but the flags meant for the presenter.
STEP_PRESENTER_ONLY = ("pause", "confirm")
# Of a reveal_step event: the step shown now, never the total, the next step or the script.
REVEAL_STEP_FIELDS = ("round", "step", "from", "action", "reveal", "publication")
# What a non-public benchmark run may show of each team's progress.
BENCH_ITEM_SEALED_FIELDS = ("run", "team", "suite", "item", "status", "error")


def event_data(event: Event, view: str) -> dict[str, Any] | None:
    """What a connection of ``view`` may know of ``event``; None when it is sealed for it."""
    if view == OPERATOR:
        return event.data
    if view == PRESENTER:
        return _presenter_data(event)
    return _public_data(event)  # judges read the public messages


def sealed(event: Event, view: str) -> bool:
    """True when ``view`` may learn nothing of ``event`` but its seq and time."""
    return event_data(event, view) is None


def _public_data(event: Event) -> dict[str, Any] | None:
    data = event.data
    kind = event.type
    if kind == ev.SHOW_CONFIGURED:
        cfg = data["config"]
        return {
            "show": cfg["show"],
            "teams": [public_team(t) for t in cfg["teams"]],
            "criteria": [public_criterion(c) for c in cfg["criteria"]],
            "rounds": [{k: r[k] for k in ROUND_FIELDS} for r in cfg["rounds"]],
        }
    if kind == ev.TEAM_ADDED:
        return {"team": public_team(data["team"]), "round": data["round"]}
    if kind == ev.ROUND_STARTED:
        return {"round": data["round"]}
    if kind in (ev.TEAM_DISQUALIFIED, ev.TEAM_WITHDRAWN, ev.TEAM_REINSTATED):
        if not data.get("announce"):
            return None
        return {k: data[k] for k in ("team", "round", "reason")}
    if kind in (ev.ROUND_PUBLISHED, ev.REVEAL_SPEED, ev.DEMO_STARTED, ev.DEMO_RESULT,
                ev.DEMO_CANCELLED, ev.BENCH_TEAM_FAILED, ev.BENCH_PAUSED, ev.BENCH_RESUMED,
                ev.BENCH_CANCELLED, ev.LOG_PUBLISHED, ev.GRAPHIC_SET):
        return data  # announced, or what happens on stage as it happens
    if kind in (ev.REQUEST_MEASURED, ev.BENCH_STARTED):
        return without_actor(data)  # who asked is not public
    if kind in (ev.ROUND_FROZEN, ev.ROUND_UNFROZEN):
        return {"round": data["round"]}  # the script and the results stay sealed
    if kind == ev.REVEAL_STEP:
        return {k: data[k] for k in REVEAL_STEP_FIELDS if k in data}
    if kind == ev.BENCH_ITEM:
        # Progress is public; whether an answer was right is sealed when the run feeds a
        # round's scores (``public`` false), like any score before its reveal.
        if data.get("public"):
            return data
        return {k: data[k] for k in BENCH_ITEM_SEALED_FIELDS}
    if kind == ev.BENCH_FINISHED:
        return data if data.get("public") else {"run": data["run"], "public": False}
    if kind == ev.TEAM_HEALTH:
        return public_health(data)
    if kind == ev.VOTING_OPENED:
        # which team gave which answer would unblind every battle: the pool stays sealed
        return {k: data[k] for k in ("round", "criterion", "rules")}
    if kind == ev.VOTING_CLOSED:
        return {"round": data["round"], "votes": data["votes"]}  # the tally is a score
    # Scores, sheets, jury decisions, arming and locking stay sealed.
    return None


def _presenter_data(event: Event) -> dict[str, Any] | None:
    """The presenter reads ahead: the next step of the reveal, arming and locking."""
    if event.type == ev.REVEAL_STEP:
        public = _public_data(event)
        assert public is not None
        return {**public, "next": event.data["next"], "total": event.data["total"]}
    if event.type in (ev.REVEAL_ARMED, ev.REVEAL_LOCKED):
        return event.data
    return _public_data(event)


# -- pieces of the state and of events ----------------------------------------------------


def public_team(team: dict[str, Any]) -> dict[str, Any]:
    """A team as viewers see it: no endpoint, no model, no key name."""
    return {k: team[k] for k in TEAM_FIELDS if k in team}


def public_criterion(crit: dict[str, Any]) -> dict[str, Any]:
    """A criterion as viewers see it: its name and weight, not how it is normalised."""
    return {k: crit[k] for k in CRITERION_FIELDS}


def public_step(step: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a viewer gets of a reveal step: everything but the flags meant for the presenter."""
    if step is None:
        return None
    return {k: v for k, v in step.items() if k not in STEP_PRESENTER_ONLY}


def next_of(script: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The presenter's read-ahead: the step after ``step``, without its board (the board
    would show the points before they are announced, even to the presenter's screen)."""
    if step >= len(script):
        return None
    return {k: v for k, v in script[step].items() if k != "board"}


def public_health(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """Up or down is public; why a check failed may name hosts and ports, which is not."""
    if health is None:
        return None
    return {k: v for k, v in health.items() if k != "error"}


def without_actor(data: dict[str, Any]) -> dict[str, Any]:
    """Who started a demo or a run, or sent a request, is the operator's to know."""
    return {k: v for k, v in data.items() if k != "actor"}


def bench_run(run: dict[str, Any], public: bool) -> dict[str, Any]:
    """A benchmark run as the state keeps it, for a view. For the public, how many items
    each team answered right is left out unless the run is public (a run that feeds no
    round's scores), and so are the suites' digests and who started it."""
    sealed_run = public and not run["public"]
    out = {k: v for k, v in run.items() if k not in ("done", "progress", "actor", "results")}
    out["suites"] = [{k: v for k, v in s.items() if k != "digest"} if public else s
                     for s in run["suites"]]
    out["progress"] = {
        team: {suite: ({k: v for k, v in c.items() if k != "correct"} if sealed_run else c)
               for suite, c in suites.items()}
        for team, suites in run["progress"].items()}
    out["results"] = None if sealed_run else run["results"]
    if not public:
        out["actor"] = run["actor"]
    return out
