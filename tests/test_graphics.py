"""Graphics taken and cleared by the desk (core/graphics.py): pure, no server."""

from __future__ import annotations

import dataclasses

import pytest

from showcase.core import events as ev
from showcase.core.audit import AuditError, audit
from showcase.core.errors import StateConflict, Unknown
from showcase.core.graphics import set_graphic
from showcase.core.patches import Views
from showcase.core.views import view_state
from tests.test_scoring import Show


def test_graphics_are_on_air_until_cleared_and_every_view_says_so() -> None:
    s = Show()
    assert view_state(s.state, "public")["graphics"] == {
        "lower-third": True, "bench": True, "demo": True, "ticker": True}
    views = Views(s.state)
    s.run(set_graphic, "ticker", False, {})
    wires = views.commit(s.state, s.events[-1])
    assert b'"graphic":"ticker","on":false' in wires["public"]  # the public sees it at once
    assert b'{"op":"replace","path":"/graphics/ticker","value":false}' in wires["public"]
    assert view_state(s.state, "public")["graphics"]["ticker"] is False
    assert view_state(s.state, "operator")["graphics"]["ticker"] is False
    s.run(set_graphic, "ticker", True, {})
    assert view_state(s.state, "public")["graphics"]["ticker"] is True


def test_an_unknown_graphic_or_one_already_so_is_refused_by_name() -> None:
    s = Show()
    with pytest.raises(Unknown, match="unknown graphic 'weather'"):
        set_graphic(s.state, "weather", False, {})
    with pytest.raises(StateConflict, match="the lower third is on air already"):
        set_graphic(s.state, "lower-third", True, {})
    s.run(set_graphic, "bench", False, {})
    with pytest.raises(StateConflict, match="the benchmark board is clear already"):
        set_graphic(s.state, "bench", False, {})


def test_the_audit_accepts_a_take_and_refuses_a_forged_one() -> None:
    s = Show()
    s.run(set_graphic, "demo", False, {})
    events = [dataclasses.replace(s.events[0], actor="showfile"), *s.events[1:]]
    assert audit(events).graphics["demo"] is False
    forged = dataclasses.replace(events[-1], data={"graphic": "demo", "on": True})
    with pytest.raises(AuditError, match="the demo panel is on air already"):
        audit([*events[:-1], forged])
    by_presenter = dataclasses.replace(events[-1], actor="presenter:remote")
    with pytest.raises(AuditError, match="graphic_set is recorded by operator"):
        audit([*events[:-1], by_presenter])
    assert ev.GRAPHIC_SET in ev.EVENT_TYPES
