"""``showcase verify``: check an exported log from outside, and what ``showcase import`` runs
before it writes anything.

Given ``events.ndjson`` (as ``showcase export`` writes it), it

1. reads every line as an event, naming the line of any that is not one;
2. recomputes the Merkle tree over the lines' bytes (core/merkle.py) and, with a signed
   checkpoint and the server's verifier key, checks the signature and that the first
   ``size`` lines give the signed root;
3. re-runs every event through the command that records its type (core/audit.py): an event
   no command could have produced at that point is refused with its line, seq and reason;
4. re-folds the log to the standings and, with the ``standings.json`` written beside it,
   compares them round by round.

Any mismatch makes the report say what and where, and the command exit non-zero.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from showcase.core import checkpoint as cp
from showcase.core import events as ev
from showcase.core.audit import AuditError, audit
from showcase.core.errors import LogError
from showcase.core.merkle import MerkleTree, leaf_hash
from showcase.core.state import State
from showcase.core.views import operator_state


class VerifyError(LogError):
    """The export does not verify; the message names the line or the check that failed."""


@dataclass(slots=True)
class Report:
    path: Path
    events: list[ev.Event] = field(default_factory=list)
    tree: MerkleTree = field(default_factory=MerkleTree)
    state: State | None = None
    signed: cp.Checkpoint | None = None
    standings_checked: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.path}: {len(self.events)} events, each one a command could have "
               "recorded at its point in the log",
               f"tree root over all {self.tree.size}: "
               f"{base64.b64encode(self.tree.root()).decode()}"]
        if self.signed is not None:
            out.append(f"signed checkpoint {self.signed.origin!r} at size {self.signed.size}: "
                       "signature good, root matches")
        if self.standings_checked:
            out.append(f"standings of {self.standings_checked} round(s) re-folded from the log "
                       "match standings.json")
        if self.state is not None and self.state.show is not None:
            for rnd in operator_state(self.state)["rounds"]:
                published = rnd.get("published")
                if published:
                    eliminated = ", ".join(published.get("eliminated") or []) or "none"
                    out.append(f"round {rnd['id']}: published; eliminated: {eliminated}")
                else:
                    out.append(f"round {rnd['id']}: {rnd['phase']}")
        return out


def read_export(path: Path) -> tuple[list[bytes], list[ev.Event]]:
    """The export's lines (the leaves) and its events; refuses a line that is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VerifyError(f"{path} cannot be read: {exc.strerror}") from exc
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    events = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise VerifyError(f"{where}: not valid JSON ({exc})") from exc
        events.append(ev.event_from_json(obj, where))
    if not events:
        raise VerifyError(f"{path} holds no events")
    return lines, events


def verify_export(path: Path, signed_note: str | None = None, key: str | None = None,
                  standings: Path | None = None) -> Report:
    """Every check above; raises VerifyError naming the first that fails."""
    lines, events = read_export(path)
    report = Report(path, events, MerkleTree(leaf_hash(line) for line in lines))
    if signed_note is not None:
        if key is None:
            raise VerifyError("a checkpoint is checked against the server's verifier key: "
                              "give --key (the line 'showcase serve' prints)")
        try:
            signed = cp.verify(signed_note, cp.parse_verifier(key))
        except cp.CheckpointError as exc:
            raise VerifyError(f"the checkpoint: {exc}") from None
        if signed.size > report.tree.size:
            raise VerifyError(f"the checkpoint covers {signed.size} events; the export holds "
                              f"only {report.tree.size}: events were removed")
        if report.tree.root(signed.size) != signed.root:
            raise VerifyError(f"the export's first {signed.size} events do not give the signed "
                              "root: an event was changed, removed, added or reordered")
        report.signed = signed
    seq_line = {e.seq: n for n, e in enumerate(events, start=1)}
    try:
        report.state = audit(events)
    except AuditError as exc:
        line = seq_line.get(exc.seq)
        where = f"{path}:{line}: " if line else f"{path}: "
        raise VerifyError(where + exc.message) from None
    if standings is not None:
        report.standings_checked = _compare_standings(report.state, standings)
    return report


def standings_file(state: State) -> dict[str, Any]:
    """What ``standings.json`` holds: each round's standings, and the published ones."""
    view = operator_state(state) if state.show else {"rounds": []}
    return {"seq": state.seq, "rounds": [
        {"round": r["id"], "phase": r["phase"], "standings": r["standings"],
         "published": (r["published"] or {}).get("standings")}
        for r in view["rounds"]]}


def _compare_standings(state: State, path: Path) -> int:
    try:
        theirs: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise VerifyError(f"{path} cannot be read as JSON: {exc}") from None
    folded = {r["round"]: r for r in standings_file(state)["rounds"]}
    rounds = theirs.get("rounds") if isinstance(theirs, dict) else None
    if not isinstance(rounds, list):
        raise VerifyError(f"{path} has no list of rounds")
    for entry in rounds:
        round_id = entry.get("round") if isinstance(entry, dict) else None
        ours = folded.get(round_id)
        if ours is None:
            raise VerifyError(f"{path}: round {round_id!r} is not in the log")
        for part in ("phase", "standings", "published"):
            if _plain(entry.get(part)) != _plain(ours[part]):
                raise VerifyError(f"{path}: round {round_id!r}: its {part} differ from what "
                                  "the log folds to")
    return len(rounds)


def _plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def import_checked(path: Path) -> tuple[list[ev.Event], State]:
    """What ``showcase import`` writes: the export's events once they verify."""
    report = verify_export(path)
    assert report.state is not None
    return report.events, report.state
