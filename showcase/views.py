"""One state, one view per role. The public view holds only what has been announced.

A value entered by a judge or an operator reaches the public view only through an event
that announces it (a publication, an announced disqualification); until then it exists
only in the operator's view. Every public message is built from these functions or from
``events.public_data``, and nothing else.
"""

from __future__ import annotations

from typing import Any

from showcase.events import JUDGE, OPERATOR, PRESENTER, PUBLIC
from showcase.state import State


def view_state(state: State, view: str) -> dict[str, Any]:
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
        out["presenter"] = {}
    return out


def public_state(state: State) -> dict[str, Any]:
    show = state.show
    assert show is not None
    return {
        "show": {"title_ko": show.title_ko, "title_en": show.title_en,
                 "precision": show.precision, "frame_rate": show.frame_rate},
        "criteria": [{"id": c.id, "name_ko": c.name_ko, "name_en": c.name_en,
                      "points": c.points} for c in show.criteria],
        "current_round": state.current_round,
        "teams": [
            {**ts.team.public(), "status": ts.public_status, "reason": ts.public_reason}
            for ts in state.teams.values()
        ],
        "rounds": [
            {"id": r.id, "name_ko": r.name_ko, "name_en": r.name_en,
             "phase": state.rounds[r.id].phase,
             "standings": (state.rounds[r.id].published or {}).get("standings")}
            for r in show.rounds
        ],
    }


def operator_state(state: State) -> dict[str, Any]:
    show = state.show
    assert show is not None
    return {
        "show": show.config(),
        "current_round": state.current_round,
        "teams": [
            {**ts.team.config(), "status": ts.status, "reason": ts.reason,
             "public_status": ts.public_status, "public_reason": ts.public_reason,
             "joined_round": ts.joined_round}
            for ts in state.teams.values()
        ],
        "rounds": [
            {
                **r.config(),
                "cut_rule": r.cut.describe(),
                "phase": state.rounds[r.id].phase,
                "roster": state.rounds[r.id].roster,
                "standings": (state.standings(r.id).to_json()
                              if state.rounds[r.id].phase != "pending" else None),
                "sheets": state.rounds[r.id].sheets,
                "values": state.rounds[r.id].values,
                "jury_order": state.rounds[r.id].jury_order,
                "published": state.rounds[r.id].published,
            }
            for r in show.rounds
        ],
        "counts": state.counts,
    }


VIEW_OF_ROLE = {"viewer": PUBLIC, "judge": JUDGE, "presenter": PRESENTER, "operator": OPERATOR}
