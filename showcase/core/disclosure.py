"""Disclosure: the operator publishes the full log of a published round, so that anyone can
run ``showcase verify`` on it and fold it to the same standings.

What is published is the log's first ``size`` events, where ``size`` is the seq of the event
that published the round (``round_published``, or the reveal step that completed it): a
prefix of the Merkle tree, so a checkpoint signed at that size proves it whole. The prefix
holds sealed events (every judge's sheet, the reveal script, the arming of steps), which is
the point: once their round is published they are revealed, and the public checks them.

Nothing still sealed may leave this way: ``still_sealed`` finds the first event in the prefix
whose content the public does not have yet and whose round is not published (a benchmark run
that feeds a later round, an unannounced change of status counted for the next round, any
future kind of sealed event without a round); the command is then refused, naming it.

Pure: the server reads the prefix from its log and asks these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from showcase.core import events as ev
from showcase.core.bodies import RoundBody
from showcase.core.checks import Command, check_expected_seq, known_round
from showcase.core.decode import decode_body
from showcase.core.errors import StateConflict
from showcase.core.secrecy import event_data
from showcase.core.state import PUBLISHED, State

# Kinds whose public form leaves out operational detail, not a result: the show's set-up
# (team endpoints, the names of key variables, how criteria are normalised; never a key or
# a token, which no event holds), who asked for something, why a health check failed. The
# full log shows them whole; they belong to no round.
OPERATIONAL = frozenset({ev.SHOW_CONFIGURED, ev.TEAM_ADDED, ev.TEAM_HEALTH,
                         ev.REQUEST_MEASURED, ev.BENCH_STARTED})


def publish_log(state: State, round_id: str, body: Any) -> Command:
    """The command: publish round ``round_id``'s log, the prefix up to its publication."""
    body = decode_body(body, RoundBody)
    check_expected_seq(state, body.expect_seq)
    known_round(state, round_id)
    rnd = state.rounds[round_id]
    if rnd.phase != PUBLISHED:
        raise StateConflict(f"round {round_id!r} is not published; its log is published "
                            "after its results", seq=state.seq)
    if rnd.log_size:
        raise StateConflict(f"round {round_id!r}'s log is published already "
                            f"(its first {rnd.log_size} events)", seq=state.seq)
    return ev.LOG_PUBLISHED, {"round": round_id, "size": rnd.published_seq}


def still_sealed(events: Iterable[ev.Event], state: State) -> tuple[int, str] | None:
    """The first event among ``events`` that the public may not read whole yet, with why;
    None when every one may be published. ``state`` is the show as it stands now."""
    run_round: dict[int, str | None] = {}  # a benchmark run (its seq) -> the round it feeds
    for event in events:
        if event.type == ev.BENCH_STARTED:
            run_round[event.seq] = event.data.get("round")
        if event_data(event, ev.PUBLIC) == event.data:
            continue
        if event.type == ev.PROVENANCE_CHECKED:
            if (state.provenance.get(event.seq) or {}).get("announced"):
                continue  # its finding is public; the rest is the paths of the check
            return event.seq, ("provenance_checked is a provenance check not announced: "
                               f"announce it first (POST /api/provenance/announce with "
                               f"\"check\": {event.seq})")
        round_id = _round_of(event, run_round)
        if round_id is None:
            if event.type in OPERATIONAL:
                continue
            return event.seq, f"{event.type} is sealed and belongs to no published round"
        found = state.rounds.get(round_id)
        if found is None or found.phase != PUBLISHED:
            return event.seq, (f"{event.type} belongs to round {round_id!r}, whose results "
                               "are not published")
    return None


def _round_of(event: ev.Event, run_round: dict[int, str | None]) -> str | None:
    if event.type in (ev.BENCH_ITEM, ev.BENCH_FINISHED, ev.BENCH_TEAM_FAILED):
        return run_round.get(event.data.get("run", 0))
    value = event.data.get("round")
    return value if isinstance(value, str) else None


def published_sizes(state: State) -> dict[str, int]:
    """Each round whose log is published, and how many events it holds."""
    return {r: rs.log_size for r, rs in state.rounds.items() if rs.log_size}
