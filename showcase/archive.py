"""``showcase export``, ``import`` and ``verify``: the log and the standings as files, and
the checks a log must pass before it is trusted (verify.py)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import orjson

from showcase.core.errors import LogError
from showcase.core.merkle import canonical_line
from showcase.core.state import State
from showcase.log.sqlite import SQLiteLog
from showcase.verify import import_checked, standings_file, verify_export


def cmd_export(args: argparse.Namespace) -> int:
    state, lines = _read_data(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "events.ndjson").write_bytes(b"".join(lines))
    standings = standings_file(state)
    (out / "standings.json").write_bytes(orjson.dumps(standings, option=orjson.OPT_INDENT_2))
    # utf-8-sig: a byte-order mark first, or Excel reads the Korean names as Latin-1.
    (out / "standings.csv").write_text(_standings_csv(state), encoding="utf-8-sig")
    print(f"exported {state.seq} events and the standings of {len(standings['rounds'])} "
          f"rounds to {out}/")
    return 0


def _read_data(data_dir: str) -> tuple[State, list[bytes]]:
    if not (Path(data_dir) / "events.sqlite3").exists():
        raise LogError(f"{data_dir} has no event log (events.sqlite3)")
    state = State()
    lines = []
    with SQLiteLog(data_dir, exclusive=False) as event_log:
        for event in event_log.read():
            state.apply(event)
            lines.append(canonical_line(event.to_json()) + b"\n")
    return state, lines


def _standings_csv(state: State) -> str:
    buf = io.StringIO()
    if state.show is None:
        return ""
    criteria = [c.id for c in state.show.criteria]
    writer = csv.writer(buf)
    writer.writerow(["round", "phase", "position", "rank", "team", "name_en", "name_ko", "status",
                     *criteria, "total", "complete", "advances", "jury"])
    for rnd in state.show.rounds:
        rs = state.rounds[rnd.id]
        if rs.phase == "pending":
            continue
        for row in state.standings(rnd.id).rows:
            team = state.teams[row.team].team
            writer.writerow([rnd.id, rs.phase, row.position or "", row.rank or "", row.team,
                             team.name_en, team.name_ko, state.teams[row.team].status
                             if rs.phase == "published" else row.status,
                             *("" if row.points[c] is None else f"{row.points[c]:g}"
                               for c in criteria),
                             f"{row.total:g}", row.complete,
                             "" if row.advances is None else row.advances, row.jury])
    return buf.getvalue()


def cmd_import(args: argparse.Namespace) -> int:
    events, _ = import_checked(Path(args.log))  # nothing is written unless it all verifies
    with SQLiteLog(args.data) as event_log:
        if event_log.last_seq:
            raise LogError(f"{args.data} already has a log (seq {event_log.last_seq})",
                           "import into a fresh data directory")
        event_log.append_now(events)
    print(f"imported {len(events)} events into {args.data} (seq 1..{events[-1].seq})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    log_path = Path(args.log)
    note = None
    if args.checkpoint:
        try:
            note = Path(args.checkpoint).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LogError(f"{args.checkpoint} cannot be read: {exc}") from exc
    beside = log_path.with_name("standings.json")
    standings = Path(args.standings) if args.standings else (
        beside if beside.exists() else None)
    report = verify_export(log_path, note, args.key, standings)
    print("\n".join(report.lines()))
    print("verified: the log is consistent with the commands"
          + (" and the signed checkpoint" if report.signed else ""))
    return 0
