"""The change each event makes to each view's state, so that no client folds events.

The state is folded once, here in Python (``state.py``). Every client (the overlays, the
operator console, anyone's tool) holds the state of its view as ``GET /api/state`` or a
snapshot gave it, and applies, for each event, the JSON Patch (RFC 6902) that the event
makes to that view's state: ``add``, ``replace`` and ``remove`` operations on JSON Pointer
paths (RFC 6901). A client applies them without knowing what the event means; it looks at
the event's type only to animate.

``Views`` keeps, for each view, the state that view's clients hold now, as JSON values.
The engine hands it each committed *batch* of events (the log makes a batch durable with
one fsync; under load dozens of events) once the state has folded them all. For each view
it builds the sections the batch's events can change (the union of their ``AFFECTS``)
once, compares them with what the view's clients hold, and gives the whole batch's patch
to the **last event of the batch that the view may see**; the earlier visible events of
the batch carry ``"patch": []``. A live standings table (``scoring.compute_standings``,
~300 µs) is thus computed once per batch, not once per score.

Why that stays exact: a client that applied the messages up to any seq inside the batch
holds the view as it was before the batch (the earlier patches are empty), and the last
message's patch takes it from there to the view after the batch, which is what a snapshot
taken at any time shows (snapshots are only ever taken between batches, engine.py) and
what ``since`` resumption replays to. Each view's message is serialised once (the fan-out
sends the same bytes to every connection of the view). An event sealed for a view changes
nothing that view shows (secrecy.py), so it plays no part in that view's patch: the view
gets the sealed placeholder and no patch.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from showcase.core import events as ev
from showcase.core.events import OPERATOR, SEALED, VIEWS, Event
from showcase.core.merkle import canonical_line, leaf_hash
from showcase.core.secrecy import event_data
from showcase.core.state import State, Telemetry
from showcase.core.views import team_telemetry, view_section, view_state

Op = dict[str, Any]  # {"op": "add" | "replace" | "remove", "path": "/a/0/b", "value"?: ...}


# The entries of a view's state that an event of each type can change ("counts", which
# every event changes, is added to all). A type not listed (the show file, a team added,
# a round started) rebuilds every view whole. An entry missing here would leave clients
# behind GET /api/state; tests/test_state.py and tests/test_secrecy.py replay whole shows
# and compare, type by type.
_ROUNDS = ("rounds", "presenter")
AFFECTS: dict[str, tuple[str, ...]] = {
    ev.SCORE_ENTERED: _ROUNDS,
    ev.JURY_DECIDED: _ROUNDS,
    ev.TEAM_DISQUALIFIED: ("teams", *_ROUNDS),
    ev.TEAM_WITHDRAWN: ("teams", *_ROUNDS),
    ev.TEAM_REINSTATED: ("teams", *_ROUNDS),
    ev.ROUND_PUBLISHED: ("teams", *_ROUNDS),
    ev.ROUND_FROZEN: _ROUNDS,
    ev.ROUND_UNFROZEN: _ROUNDS,
    ev.REVEAL_STEP: ("teams", *_ROUNDS),
    ev.REVEAL_ARMED: _ROUNDS,
    ev.REVEAL_LOCKED: _ROUNDS,
    ev.REVEAL_SPEED: _ROUNDS,
    ev.DEMO_STARTED: ("demo", "demo_running"),
    ev.DEMO_RESULT: ("demo", "demo_running", "telemetry"),
    ev.DEMO_CANCELLED: ("demo", "demo_running"),
    ev.REQUEST_MEASURED: ("telemetry",),
    ev.TEAM_HEALTH: ("telemetry",),
    ev.BENCH_STARTED: ("bench",),
    ev.BENCH_ITEM: ("bench",),
    ev.BENCH_TEAM_FAILED: ("bench",),
    ev.BENCH_PAUSED: ("bench",),
    ev.BENCH_RESUMED: ("bench",),
    ev.BENCH_CANCELLED: ("bench",),
    ev.BENCH_FINISHED: ("bench",),
    ev.BENCH_IMPORTED: ("bench_imports",),
    ev.VOTING_OPENED: (),
    ev.VOTING_CLOSED: _ROUNDS,
    ev.LOG_PUBLISHED: _ROUNDS,
    ev.GRAPHIC_SET: ("graphics",),
}


def sealed_data(event: Event) -> dict[str, str]:
    """What a view that may not see ``event`` gets of it: its leaf hash in the log's Merkle
    tree (core/merkle.py), base64. A recording of the public stream thus commits to every
    sealed value without showing one: once the full log is published, each line hashes to
    the leaf the public was sent at the time."""
    leaf = leaf_hash(canonical_line(event.to_json()))
    return {"leaf": base64.b64encode(leaf).decode()}


class Views:
    """Each view's state as its clients hold it, and each event's message per view,
    prepared a committed batch at a time (``commit_batch``)."""

    def __init__(self, state: State) -> None:
        self.seq = state.seq
        self._shown = {view: _as_json(view_state(state, view)) for view in VIEWS}

    def shown(self, view: str) -> dict[str, Any]:
        """The state of ``view`` at ``seq``: what a client that applied every patch holds."""
        return self._shown[view]  # type: ignore[no-any-return]

    def commit(self, state: State, event: Event) -> dict[str, bytes]:
        """Each view's message for ``event``, which ``state`` has just applied: a batch of one."""
        return self.commit_batch(state, [event])[0]

    def commit_batch(self, state: State, events: list[Event]) -> list[dict[str, bytes]]:
        """Each view's message for each of ``events`` (consecutive seqs, the first
        following ``seq``), which ``state`` has just applied, all of them. The last event
        each view may see carries that view's patch for the whole batch; its earlier ones
        carry an empty patch."""
        if not events:
            return []
        for offset, event in enumerate(events, self.seq + 1):
            if event.seq != offset:
                raise ValueError(f"views at seq {offset - 1} cannot take seq {event.seq}")
        messages: list[dict[str, Any]] = [{} for _ in events]  # per event: view -> message
        wires: list[dict[str, bytes]] = [{} for _ in events]
        sealed: dict[int, bytes] = {}  # the placeholder of each event, serialised once
        built: dict[tuple[str, bool, str], Any] = {}  # telemetry figures, the same for 3 views
        for view in VIEWS:
            last = -1
            keys: set[str] | None = set()
            teams: set[str] = set()  # whose telemetry the batch measured
            for index, event in enumerate(events):
                data = event_data(event, view)
                if data is None:
                    if index not in sealed:
                        sealed[index] = orjson.dumps({"seq": event.seq, "ts": event.ts,
                                                      "type": SEALED, "data": sealed_data(event)})
                    wires[index][view] = sealed[index]
                    continue
                message: dict[str, Any] = {"seq": event.seq, "ts": event.ts,
                                           "type": event.type}
                if view == OPERATOR:
                    message["actor"] = event.actor
                message["data"] = data
                message["patch"] = []
                messages[index][view] = message
                last = index
                affects = AFFECTS.get(event.type)
                if affects is None or keys is None:
                    keys = None
                    continue
                keys.update(affects)
                if "telemetry" in affects:
                    teams.add(event.data["team"])
            if last >= 0:
                messages[last][view]["patch"] = self._change(state, view, keys, teams, built)
        for index, per_view in enumerate(messages):
            for view, message in per_view.items():
                wires[index][view] = orjson.dumps(message)
        self.seq = events[-1].seq
        return wires

    def _change(self, state: State, view: str, keys: set[str] | None, teams: set[str],
                built: dict[tuple[str, bool, str], Any]) -> list[Op]:
        """The patch of ``view`` for what changed in ``keys`` (None: anything), the
        telemetry of ``teams`` alone; the view's state brought up to date."""
        shown = self._shown[view]
        if keys is None or state.show is None or "teams" not in shown:
            now = _as_json(view_state(state, view))
            self._shown[view] = now
            return diff(shown, now)
        ops: list[Op] = []
        for key in (*sorted(keys), "counts"):
            if key not in shown:
                continue  # not part of this view (the presenter's read-ahead, counts)
            if key == "telemetry":
                # Only the batch's measured teams changed: their figures alone are built.
                public = view != OPERATOR
                for team in sorted(teams):
                    if (key, public, team) not in built:  # one public form for three views
                        figures = state.telemetry.get(team) or Telemetry()
                        built[key, public, team] = _as_json(team_telemetry(figures,
                                                                           public=public))
                    now = built[key, public, team]
                    if team in shown[key]:
                        ops.extend(diff(shown[key][team], now, [key, team]))
                    else:
                        ops.append({"op": "add", "path": _pointer([key], team), "value": now})
                    shown[key][team] = now
                continue
            now = _as_json(view_section(state, view, key))
            ops.extend(diff(shown[key], now, [key]))
            shown[key] = now
        return ops


def _as_json(value: Any) -> Any:
    """A copy made of JSON values only. The view states share dicts with the live state,
    which the next event changes in place; what a client holds must not change with it."""
    return orjson.loads(orjson.dumps(value))


def diff(old: Any, new: Any, at: list[str] | None = None) -> list[Op]:
    """The operations that turn ``old`` into ``new`` (JSON values), found at the path
    ``at`` of the document. Lists of the same length are compared item by item; a list
    that changed length is replaced whole."""
    ops: list[Op] = []
    if old != new:
        _diff(old, new, list(at or []), ops)
    return ops


def _diff(old: Any, new: Any, path: list[str], ops: list[Op]) -> None:
    """Called only where ``old != new``. Equal subtrees are skipped by one comparison in
    C, so the walk costs what changed, not the size of the state. (That comparison takes
    1 for 1.0 and True; the views never turn a number into a bool or an int into a float
    of the same value, and a JavaScript client could not tell them apart anyway.)"""
    if type(old) is dict and type(new) is dict:
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": _pointer(path, key), "value": value})
            elif old[key] != value:
                path.append(key)
                _diff(old[key], value, path, ops)
                path.pop()
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": _pointer(path, key)})
        return
    if type(old) is list and type(new) is list and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            if before != after:
                path.append(str(index))
                _diff(before, after, path, ops)
                path.pop()
        return
    ops.append({"op": "replace", "path": _pointer(path), "value": new})


def _pointer(path: list[str], last: str | None = None) -> str:
    parts = path if last is None else [*path, last]
    return "".join("/" + escape(part) for part in parts)


def escape(key: str) -> str:
    """A key as one JSON Pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
