"""Graphics taken to air and cleared by the desk, as commands.

A broadcast engineer takes a graphic (the lower third, the benchmark board, the demo panel,
the ticker) to air or clears it from the console, without walking to the OBS machine. It is
a fact of the show, so it is an event (``graphic_set``) folded into the state: every page
showing that graphic obeys it, and so does a page opened later, because it reads the state
like any other. Every graphic is on air until it is cleared.

Pure, like every command: a graphic the show does not have is refused by name, and so is
taking one that is on air already or clearing one that is already clear (the desk's screen
was behind; nothing is recorded).
"""

from __future__ import annotations

from typing import Any

from showcase.core import events as ev
from showcase.core.bodies import GraphicBody
from showcase.core.checks import Command, check_expected_seq
from showcase.core.decode import decode_body
from showcase.core.errors import StateConflict, Unknown
from showcase.core.state import GRAPHICS, State

__all__ = ["GRAPHICS", "set_graphic"]

# In the operator's refusals (the console is in English; viewers see the graphic, no words).
NAMES = {"lower-third": "lower third", "bench": "benchmark board", "demo": "demo panel",
         "ticker": "ticker"}


def set_graphic(state: State, graphic: str, on: bool, body: Any) -> Command:
    """Take ``graphic`` to air (``on``) or clear it."""
    body = decode_body(body, GraphicBody)
    check_expected_seq(state, body.expect_seq)
    if graphic not in GRAPHICS:
        raise Unknown(f"unknown graphic {graphic!r}", f"graphics: {', '.join(GRAPHICS)}")
    if state.graphics[graphic] == on:
        now = "on air" if on else "clear"
        raise StateConflict(f"the {NAMES[graphic]} is {now} already", seq=state.seq)
    return ev.GRAPHIC_SET, {"graphic": graphic, "on": on}
