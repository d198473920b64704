"""Weight provenance in a show: a check's result recorded, sealed, then announced.

A check (provenance/runs.py) compares a team's declared weights with a reference and
records its result with ``record_check``: one ``provenance_checked`` event, sealed for every
view but the operator's (secrecy.py). The operator announces it with ``announce``: one
``provenance_announced`` event that carries the finding in its public form
(``secrecy.public_finding``: verdicts, figures, sentences in Korean and English, the files'
hashes; no path on the server's machine), from which the overlay card reads.

Pure, like every command: ``showcase verify`` re-runs both on an exported log
(core/audit.py). The weights themselves are not re-read there; the hashes in the event say
which files a verifier would have to compare again.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType

from showcase.core import events as ev
from showcase.core.bodies import ExpectSeq
from showcase.core.checks import Command, check_expected_seq, known_team
from showcase.core.decode import Body, decode_body
from showcase.core.errors import InvalidRequest, StateConflict, Unknown
from showcase.core.secrecy import public_finding
from showcase.core.state import State

#: What a check compares (provenance/components.py's choices).
COMPONENTS = ("vision", "language", "all")
#: A component's verdict, and the check's as a whole (the most serious of its components).
VERDICTS = ("derived", "inconclusive", "independent")


class CheckBody(Body):
    """Start a weight provenance check of a team's declared weights against a reference."""

    team: Annotated[str, Meta(min_length=1, max_length=64, description="the team whose "
                              "declared weights ([provenance.weights]) are checked")]
    reference: Annotated[str, Meta(min_length=1, max_length=1024, description=(
        "a reference named in [provenance.references], or a path under one of "
        "[provenance] roots"))]
    component: Annotated[str, Meta(description="vision, language or all")] = "all"
    permutation: Annotated[bool, Meta(description="run the permutation test (finds copies "
                                      "whose units were reordered; slower)")] = True
    expect_seq: ExpectSeq | UnsetType = UNSET


class AnnounceBody(Body):
    """Announce a recorded provenance check: its finding becomes public."""

    check: Annotated[int, Meta(ge=1, description="the seq of its provenance_checked event")]
    expect_seq: ExpectSeq | UnsetType = UNSET


def check_request(state: State, body: Any) -> CheckBody:
    """A check's request, checked against the show before any file is touched."""
    request = decode_body(body, CheckBody)
    check_expected_seq(state, request.expect_seq)
    known_team(state, request.team)
    if request.component not in COMPONENTS:
        raise InvalidRequest(f"unknown component {request.component!r}",
                             f"one of {', '.join(COMPONENTS)}")
    return request


def overall(verdicts: list[str]) -> str:
    """A check's verdict: derived if any component is, else inconclusive if any is."""
    for verdict in VERDICTS:
        if verdict in verdicts:
            return verdict
    raise InvalidRequest("a provenance check needs at least one component's verdict")


def record_check(state: State, data: dict[str, Any]) -> Command:
    """The result of a finished check, as the runner made it (provenance/runs.py)."""
    try:
        known_team(state, data["team"])
        components = data["components"]
        verdicts = [c["verdict"] for c in components]
        for side in ("model", "against"):
            files = data[side]["files"]
            if not files or not all(isinstance(f["sha256"], str) and len(f["sha256"]) == 64
                                    for f in files):
                raise InvalidRequest(f"'{side}' must list its files with their SHA-256")
        if data["component"] not in COMPONENTS:
            raise InvalidRequest(f"unknown component {data['component']!r}")
    except (KeyError, TypeError) as exc:
        raise InvalidRequest(f"a provenance check's result lacks {exc}") from None
    if any(v not in VERDICTS for v in verdicts) or data.get("verdict") != overall(verdicts):
        raise InvalidRequest(f"verdicts must be among {', '.join(VERDICTS)}, and the "
                             "check's the most serious of its components'")
    return ev.PROVENANCE_CHECKED, data


def announce(state: State, body: Any) -> Command:
    """Unseal a recorded check: its public finding goes into the event itself, so every
    view (and the overlay) reads it from the announcement."""
    body = decode_body(body, AnnounceBody)
    check_expected_seq(state, body.expect_seq)
    check = state.provenance.get(body.check)
    if check is None:
        known = ", ".join(str(seq) for seq in state.provenance) or "none yet"
        raise Unknown(f"no provenance check was recorded at seq {body.check}",
                      f"recorded checks: {known}")
    if check["announced"] is not None:
        raise StateConflict(f"provenance check {body.check} was announced at seq "
                            f"{check['announced']}", "it is public already", seq=state.seq)
    return ev.PROVENANCE_ANNOUNCED, {"check": body.check, **public_finding(check)}
