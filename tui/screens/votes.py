"""Audience voting at the desk: open and close the current round's voting, and watch it
while it runs: how many votes, how they spread over the pairs of teams, what the rules
refused and why, which answers were withheld for naming their team, and which voters the
outlier test flags. Never who is winning: the tally is sealed until the reveal, here too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from ..client import CommandError
from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.dialog import Field, Values
from ..widgets.table import fill_table
from ..wording import fmt_clock, fmt_num
from .base import ConsoleScreen

#: How often the screen reads the operator's voting figures while it is on view (seconds).
POLL = 2.0
RULES = ("linear", "win_rate")


class VotesScreen(ConsoleScreen):
    SECTION = "votes"
    HELP = "audience voting: open it with a battle pool, watch counts, refusals and outliers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_voting", "Open voting"),
        Binding("c", "close_voting", "Close voting"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status: Json | None = None  # the last GET /api/rounds/{round}/voting answer
        self.error = ""  # why the last read failed, shown until one succeeds
        self._reading = False

    def body(self) -> ComposeResult:
        yield Static(id="votes-line", markup=False)
        with Horizontal(id="votes-panes"):
            with Vertical(id="pairs-pane", classes="pane"):
                yield DataTable(id="pairs", cursor_type="row", zebra_stripes=True)
            with Vertical(id="checks-pane", classes="pane"):
                yield Static(id="refusals", markup=False)
        with Vertical(id="outliers-pane", classes="pane"):
            yield DataTable(id="outliers", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#pairs-pane").border_title = "Votes per pair (never the split)"
        self.query_one("#checks-pane").border_title = "Refused and withheld"
        self.query_one("#outliers-pane").border_title = "Voters the outlier test flags"
        self.query_one("#pairs", DataTable).add_columns("Pair", "Votes", "Share")
        self.query_one("#outliers", DataTable).add_columns(
            "Voter", "Decisive", "Agreed", "Expected", "p", "q")
        self.query_one("#pairs", DataTable).focus()
        self.set_interval(POLL, self.read_status)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.read_status()

    def read_status(self) -> None:
        """Read the figures again, unless another screen is on view or a read is under way."""
        if self._reading or self.app.screen is not self or not self.model.round_id():
            return
        self._reading = True
        self.run_worker(self._read(), group="votes", exit_on_error=False)

    async def _read(self) -> None:
        try:
            self.status = await self.console.client.get(
                f"/api/rounds/{self.model.round_id()}/voting")
            self.error = ""
        except CommandError as exc:
            self.error = str(exc).splitlines()[0]
        finally:
            self._reading = False
        self.redraw(force=True)

    def draw(self, model: ShowModel, force: bool) -> None:
        status = self.status if (self.status or {}).get("round") == model.round_id() else None
        show_line(self.query_one("#votes-line", Static), votes_line(model, status, self.error))
        fill_table(self.query_one("#pairs", DataTable), pair_rows(model, status))
        self.query_one("#refusals", Static).update(refusal_text(model, status))
        fill_table(self.query_one("#outliers", DataTable), outlier_rows(status))

    # -- actions -----------------------------------------------------------------

    def action_open_voting(self) -> None:
        round_id = self.model.round_id()
        fields = [Field("pool", "Battle pool file (JSON, on this machine)",
                        "pool.json: [{id, text, answers: {team: answer}}]", required=True),
                  Field("criterion", "Criterion the tally enters", value=tally_criterion(
                      self.model)),
                  Field("rule", "Points rule (linear or win_rate)", value="linear"),
                  Field("min_seconds", "Seconds a voter reads a battle before a vote counts",
                        value="5"),
                  Field("minutes", "Minutes on the overlays' countdown (0: until closed)",
                        value="0")]

        def explain(values: Values) -> str:
            minutes = values.get("minutes") or "0"
            until = ("until you close it" if minutes in ("0", "0.0")
                     else f"with a {minutes}-minute countdown on the overlays")
            return (f"ON AIR: voting opens on round {round_id}, {until}. Viewers at /vote "
                    "judge pairs of anonymous answers from the pool; the overlays show that "
                    "voting is open and how many votes are in, never the split. Closing it "
                    "records the tally as the user-feedback points, sealed until the reveal.")

        self.ask(f"Open voting on round {round_id}", explain, "Open voting",
                 f"/api/rounds/{round_id}/voting/open", open_body, fields=fields,
                 done=f"voting open on round {round_id}")

    def action_close_voting(self) -> None:
        round_id = self.model.round_id()
        status = self.status or {}
        if not status.get("open"):
            self.console.show_error(f"Voting on round {round_id} is not open: o opens it.")
            return
        flagged = [str(o["voter"]) for o in status.get("outliers") or []]
        fields = [Field("keep", "Flagged voters to count anyway (comma-separated)",
                        ", ".join(flagged) if flagged else "none flagged"),
                  Field("reason", "Why they count anyway (needed with voters to keep)")]
        votes = status.get("votes", 0)
        left_out = (f" The outlier test flags {len(flagged)} voter(s): their votes are left "
                    "out unless you name them to keep." if flagged else "")
        self.ask(f"Close voting on round {round_id}",
                 f"Voting stops on every screen and the {votes} counted vote(s) are tallied "
                 f"(Bradley-Terry) into the round's user-feedback points, recorded sealed "
                 f"until the reveal; nobody sees them before.{left_out} It cannot be reopened.",
                 "Close voting", f"/api/rounds/{round_id}/voting/close", close_body,
                 fields=fields, danger=True, done=f"voting closed on round {round_id}")


def open_body(values: Values) -> Json:
    """The opening command's body, from the dialog: the pool read from its file."""
    path = Path(str(values.get("pool") or "")).expanduser()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read the battle pool {str(path)!r}",
                           exc.strerror or str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"the battle pool {str(path)!r} is not JSON", str(exc)) from None
    prompts = raw.get("prompts") if isinstance(raw, dict) else raw
    if not isinstance(prompts, list):
        raise CommandError(f"the battle pool {str(path)!r} holds no list of prompts",
                           'a list of {"id", "text", "answers": {team: answer}}, or '
                           '{"prompts": [...]}')
    body: Json = {"prompts": prompts}
    if values.get("criterion"):
        body["criterion"] = values["criterion"]
    rule = str(values.get("rule") or "linear")
    if rule not in RULES:
        raise CommandError(f"unknown points rule {rule!r}", f"rules: {', '.join(RULES)}")
    body["rule"] = rule
    for name, label in (("min_seconds", "seconds before a vote counts"),
                        ("minutes", "minutes on the countdown")):
        raw = str(values.get(name) or "0")
        try:
            body[name] = float(raw)
        except ValueError:
            raise CommandError(f"{label} must be a number, not {raw!r}") from None
    return body


def tally_criterion(model: ShowModel) -> str:
    """The criterion voting feeds by default: "feedback" where the show has it, else its
    first criterion of one value per team (not the judges')."""
    criteria = model.criteria()
    if any(c.get("id") == "feedback" for c in criteria):
        return "feedback"
    single = [str(c["id"]) for c in criteria if c.get("source") != "judges"]
    return single[0] if single else "feedback"


def close_body(values: Values) -> Json:
    keep = [v.strip() for v in str(values.get("keep") or "").split(",") if v.strip()]
    body: Json = {"keep_voters": keep}
    if values.get("reason"):
        body["reason"] = values["reason"]
    return body


def votes_line(model: ShowModel, status: Json | None, error: str) -> Text:
    round_id = model.round_id()
    line = Text()
    if error:
        return Text(f"Round {round_id}: cannot read the voting figures: {error}",
                    style="bold red")
    if status is None:
        return Text(f"Round {round_id}: reading the voting figures…", style="dim")
    if not status.get("opened"):
        return Text(f"Round {round_id}: voting not opened · o opens it with a battle pool",
                    style="dim")
    if status.get("open"):
        line.append(" VOTING OPEN ", style="bold black on green")
        line.append(f" round {round_id} · since {fmt_clock(status.get('opened_ts'))}")
        closes = status.get("closes_at")
        if closes:
            left = max(0, int(closes - time.time()))
            line.append(f" · {left // 60}:{left % 60:02d} left on the countdown")
    else:
        line.append(" VOTING CLOSED ", style="bold black on yellow")
        line.append(f" round {round_id} · tally recorded, sealed until the reveal")
    line.append(f" · {status.get('votes', 0):,} votes counted")
    share = status.get("refused_share")
    if share is not None:
        line.append(f" · {100 * share:.1f}% refused",
                    style="bold yellow" if share >= 0.1 else "")
    if not status.get("open"):
        excluded = status.get("excluded") or []
        line.append(f" · {len(excluded)} voter(s) left out")
        if status.get("log_hash"):
            line.append(f" · vote log {str(status['log_hash'])[:12]}", style="dim")
    return line


def pair_rows(model: ShowModel, status: Json | None) -> list[tuple[str, list[Any]]]:
    pairs: dict[str, int] = (status or {}).get("pairs") or {}
    total = sum(pairs.values())
    rows = []
    for key, count in sorted(pairs.items()):
        a, _, b = key.partition("|")
        label = f"{model.team_name(a)} – {model.team_name(b)}"
        rows.append((key, [label, f"{count:,}", f"{100 * count / total:.1f}%" if total
                           else "—"]))
    return rows


def refusal_text(model: ShowModel, status: Json | None) -> Text:
    text = Text()
    if status is None or not status.get("opened"):
        return text
    refused: dict[str, int] = status.get("refused") or {}
    if refused:
        text.append("Refused by rule\n", style="bold")
        for rule, count in sorted(refused.items(), key=lambda kv: -kv[1]):
            text.append(f"  {rule:<18} {count:,}\n")
    else:
        text.append("No vote refused.\n", style="dim")
    withheld: list[Json] = status.get("withheld") or []
    if withheld:
        text.append(f"\n{len(withheld)} answer(s) withheld: they name a team\n", style="bold")
        for w in withheld[:6]:
            text.append(f"  {model.team_name(str(w.get('team')))}, prompt {w.get('prompt')}: "
                        f"names {w.get('name')!r}\n")
    left_out = status.get("left_out") or []
    if left_out:
        text.append(f"\n{len(left_out)} prompt(s) left out of the battles "
                    "(not every team has a shown answer)\n", style="yellow")
    served = status.get("battles_served")
    if served is not None:
        text.append(f"\n{fmt_num(served)} battles handed out on this node", style="dim")
    return text


def outlier_rows(status: Json | None) -> list[tuple[str, list[Any]]]:
    rows = []
    for o in (status or {}).get("outliers") or []:
        rows.append((str(o["voter"]), [
            str(o["voter"]), fmt_num(o.get("decisive")), fmt_num(o.get("agreed")),
            fmt_num(o.get("expected"), 1), f"{o.get('p_value', 0):.2g}",
            f"{o.get('q_value', 0):.2g}"]))
    return rows
