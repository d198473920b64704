"""Colours shared by every screen: a team's own colour and each status's style."""

from __future__ import annotations

from ..model import Json

STATUS_STYLE = {"active": "", "disqualified": "bold red", "withdrawn": "yellow",
                "eliminated": "dim"}


def team_style(team: Json) -> str:
    colour = team.get("colour")
    return f"bold {colour}" if isinstance(colour, str) and colour.startswith("#") else "bold"
