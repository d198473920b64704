"""One state, one view per role. The public view holds only what has been announced.

A value entered by a judge or an operator reaches the public view only through an event
that announces it (a publication, an announced disqualification); until then it exists
only in the operator's view. What each view may see of each piece is ``secrecy.py``'s to
decide; this module lays the pieces out. Every public snapshot, state and event patch is
built from ``view_state``, and nothing else.
"""

from __future__ import annotations

from typing import Any

from showcase.core.events import JUDGE, OPERATOR, PRESENTER
from showcase.core.scoring import ACTIVE
from showcase.core.secrecy import (
    VIEW_OF_ROLE,
    bench_run,
    next_of,
    public_criterion,
    public_health,
    public_step,
    public_team,
    without_actor,
)
from showcase.core.state import OPEN, State, Telemetry

__all__ = ["VIEW_OF_ROLE", "judge_sheets", "latest_bench", "latest_demo", "operator_state",
           "public_state",
           "team_telemetry", "view_section", "view_state"]
from showcase.core.stats import percentile


def view_state(state: State, view: str) -> dict[str, Any]:
    """What ``view`` shows of ``state``: the body of ``GET /api/state`` and of snapshots."""
    if state.show is None:
        return {"show": None, "teams": [], "rounds": [], "current_round": ""}
    if view == OPERATOR:
        return operator_state(state)
    out = public_state(state)
    if view == JUDGE:
        show = state.show
        out["judges"] = [{"id": j.id, "name": j.name} for j in show.judges]
        out["criteria"] = [
            {**c, "source": full.source, "scale": list(full.scale)}
            for c, full in zip(out["criteria"], show.criteria, strict=True)
        ]
    elif view == PRESENTER:
        out["presenter"] = presenter_reveal(state)
    return out


def public_reveal(state: State, round_id: str) -> dict[str, Any] | None:
    """A frozen round's reveal as viewers see it: the step shown now, and nothing after."""
    rnd = state.rounds[round_id]
    if rnd.frozen is None:
        return None
    script = rnd.frozen["script"]
    return {"step": rnd.step, "speed": rnd.speed,
            "current": public_step(script[rnd.step - 1] if rnd.step else None)}


def presenter_reveal(state: State) -> dict[str, Any]:
    """The presenter reads ahead: the next step's text, and whether it must be armed."""
    rnd = state.rounds.get(state.current_round)
    if rnd is None or rnd.frozen is None:
        return {"round": state.current_round, "reveal": None}
    script = rnd.frozen["script"]
    return {"round": rnd.id, "reveal": {
        "step": rnd.step, "total": len(script), "next": next_of(script, rnd.step),
        "armed": rnd.armed, "locked": rnd.locked, "lock_reason": rnd.lock_reason,
        "speed": rnd.speed, "complete": rnd.phase == "published"}}


def public_state(state: State) -> dict[str, Any]:
    show = state.show
    assert show is not None
    return {
        "show": {"title_ko": show.title_ko, "title_en": show.title_en,
                 "precision": show.precision, "frame_rate": show.frame_rate},
        "criteria": [public_criterion(c.config()) for c in show.criteria],
        "current_round": state.current_round,
        "teams": _public_teams(state),
        "rounds": _public_rounds(state),
        "telemetry": telemetry(state, public=True),
        "demo": latest_demo(state, public=True),
        "bench": latest_bench(state, public=True),
        "graphics": dict(state.graphics),
    }


def _public_teams(state: State) -> list[dict[str, Any]]:
    return [{**public_team(ts.team.config()), "status": ts.public_status,
             "reason": ts.public_reason} for ts in state.teams.values()]


def _public_rounds(state: State) -> list[dict[str, Any]]:
    assert state.show is not None
    return [{"id": r.id, "name_ko": r.name_ko, "name_en": r.name_en,
             "phase": state.rounds[r.id].phase,
             "standings": (state.rounds[r.id].published or {}).get("standings"),
             "reveal": public_reveal(state, r.id),
             "log": state.rounds[r.id].log_size or None}
            for r in state.show.rounds]


def operator_state(state: State) -> dict[str, Any]:
    show = state.show
    assert show is not None
    return {
        "show": show.config(),
        "current_round": state.current_round,
        "teams": _operator_teams(state),
        "rounds": _operator_rounds(state),
        "counts": state.counts,
        "telemetry": telemetry(state, public=False),
        "demo": latest_demo(state),
        "demo_running": state.demo_running,
        "bench": latest_bench(state, public=False),
        "bench_imports": state.bench_imports,
        "graphics": dict(state.graphics),
    }


def _operator_teams(state: State) -> list[dict[str, Any]]:
    return [{**ts.team.config(), "status": ts.status, "reason": ts.reason,
             "public_status": ts.public_status, "public_reason": ts.public_reason,
             "joined_round": ts.joined_round} for ts in state.teams.values()]


def _operator_rounds(state: State) -> list[dict[str, Any]]:
    assert state.show is not None
    out = []
    for cfg in state.show.rounds:
        rnd = state.rounds[cfg.id]
        out.append({
            **cfg.config(),
            "cut_rule": cfg.cut.describe(),
            "phase": rnd.phase,
            "roster": rnd.roster,
            "standings": state.standings(cfg.id).to_json() if rnd.phase != "pending" else None,
            "sheets": rnd.sheets,
            "values": rnd.values,
            "jury_order": rnd.jury_order,
            "published": rnd.published,
            "reveal": None if rnd.frozen is None else {
                "step": rnd.step, "total": len(rnd.frozen["script"]), "armed": rnd.armed,
                "locked": rnd.locked, "lock_reason": rnd.lock_reason, "speed": rnd.speed},
            "log": rnd.log_size or None,
        })
    return out


def view_section(state: State, view: str, key: str) -> Any:
    """One top-level entry of ``view_state(state, view)``, built alone: what an event
    changed, without building the rest (patches.py). KeyError for an entry it does not
    build alone; the caller then builds the whole view."""
    operator = view == OPERATOR
    if key == "teams":
        return _operator_teams(state) if operator else _public_teams(state)
    if key == "rounds":
        return _operator_rounds(state) if operator else _public_rounds(state)
    if key == "presenter":
        return presenter_reveal(state)
    if key == "demo":
        return latest_demo(state, public=not operator)
    if key == "bench":
        return latest_bench(state, public=not operator)
    if key == "counts":
        return state.counts
    if key == "demo_running":
        return state.demo_running
    if key == "bench_imports":
        return state.bench_imports
    if key == "graphics":
        return dict(state.graphics)
    raise KeyError(key)


def telemetry(state: State, public: bool) -> dict[str, Any]:
    """Each team's measured service: rolling p50/p95 over its recent answers, and health."""
    return {team: team_telemetry(state.telemetry.get(team) or Telemetry(), public)
            for team in state.teams}


def team_telemetry(t: Telemetry, public: bool) -> dict[str, Any]:
    ttft = [r[0] for r in t.recent if r[2] and r[0] is not None]
    tps = [r[1] for r in t.recent if r[2] and r[1] is not None]
    recent_errors = sum(1 for r in t.recent if not r[2])
    health = public_health(t.health) if public else t.health
    return {
        "requests": t.requests,
        "errors": t.errors,
        "recent": len(t.recent),
        "error_rate": round(recent_errors / len(t.recent), 4) if t.recent else None,
        "ttft_ms_p50": _round(percentile(ttft, 50)),
        "ttft_ms_p95": _round(percentile(ttft, 95)),
        "decode_tps_p50": _round(percentile(tps, 50)),
        "decode_tps_p95": _round(percentile(tps, 95)),
        "health": health,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def latest_demo(state: State, public: bool = False) -> dict[str, Any] | None:
    if not state.demos:
        return None
    demo = state.demos[max(state.demos)]
    return without_actor(demo) if public else demo


def latest_bench(state: State, public: bool) -> dict[str, Any] | None:
    """The latest benchmark run. For the public, how many items each team answered right
    is left out unless the run is public (a run that feeds no round's scores)."""
    if not state.benches:
        return None
    run = state.benches[max(state.benches)]
    return bench_run(run, public)


def judge_sheets(state: State, judge_id: str) -> dict[str, Any]:
    """One judge's own sheets in the current round (``GET /api/judge/sheets``): the teams
    still in it, each criterion the judges score with its scale, and this judge's values,
    never another judge's. ``open``: whether sheets can be entered or corrected now."""
    show = state.show
    assert show is not None
    judge = next(j for j in show.judges if j.id == judge_id)
    rnd = state.rounds[state.current_round]
    cfg = show.round(rnd.id)
    criteria = [c for c in show.criteria if c.source == "judges"]
    return {
        "seq": state.seq,
        "judge": {"id": judge.id, "name": judge.name},
        "round": {"id": rnd.id, "name_ko": cfg.name_ko if cfg else rnd.id,
                  "name_en": cfg.name_en if cfg else rnd.id, "phase": rnd.phase,
                  "open": rnd.phase == OPEN and rnd.frozen is None},
        "criteria": [{"id": c.id, "name_ko": c.name_ko, "name_en": c.name_en,
                      "scale": list(c.scale)} for c in criteria],
        "teams": [public_team(state.teams[t].team.config())
                  for t, status in rnd.roster.items() if status == ACTIVE],
        "sheets": {c.id: {team: cells[judge_id]
                          for team, cells in rnd.sheets.get(c.id, {}).items()
                          if judge_id in cells} for c in criteria},
    }
