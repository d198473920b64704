"""Benchmark runs: pick suites and teams and start a run, watch each team's progress and
running accuracy, pause, resume or cancel it, and enter a finished run's results as the
round's benchmark criterion."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Select, SelectionList, Static

from ..client import CommandError
from ..desk import Desk
from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.dialog import ActionDialog, Field, Values
from ..widgets.style import team_style
from ..widgets.table import fill_table
from ..wording import accuracy, fmt_num
from .base import ConsoleScreen

STATUS_STYLE = {"running": "bold cyan", "paused": "bold yellow", "finished": "bold green",
                "failed": "bold white on red", "cancelled": "yellow"}
PHASE_STYLE = {"running": "bold black on cyan", "paused": "bold black on yellow",
               "finished": "bold black on green", "cancelled": "bold black on yellow"}
BLOCKS = " ▏▎▍▌▋▊▉█"
EXHIBITION = "-"  # the round picker's value for a run that feeds no round


class BenchScreen(ConsoleScreen):
    SECTION = "bench"
    HELP = "benchmark runs: start one, watch every team's progress and accuracy, enter results"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start a run"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("a", "apply", "Apply results"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._result_columns: list[str] = []
        self._width = 0
        self.suites: Json | None = None  # the last GET /api/bench/suites answer

    def body(self) -> ComposeResult:
        yield Static(id="bench-line", markup=False)
        with Vertical(id="progress-pane", classes="pane"):
            yield DataTable(id="progress", cursor_type="row", zebra_stripes=True)
        yield Static(id="bench-note", markup=False)
        with Horizontal(id="bench-lower"):
            with Vertical(id="results-pane", classes="pane"):
                yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
            with Vertical(id="items-pane", classes="pane"):
                yield Static(id="items", markup=False)

    def on_mount(self) -> None:
        self.query_one("#progress-pane").border_title = "Progress (operator view)"
        self.query_one("#results-pane").border_title = "Results: accuracy and suite score"
        self.query_one("#items-pane").border_title = "Latest items (5 for the log)"
        self.query_one("#progress", DataTable).add_columns(
            "Team", "Status", "Progress", "Err", "it/s", "ETA", "Accuracy ± se")
        self.query_one("#progress", DataTable).focus()

    def on_resize(self) -> None:
        self.redraw(force=True)  # the bars take the new width

    def draw(self, model: ShowModel, force: bool) -> None:
        run = model.bench()
        show_line(self.query_one("#bench-line", Static), run_line(model, run))
        table = self.query_one("#progress", DataTable)
        fill_table(table, progress_rows(model, run, self._bar_width(table)))
        show_line(self.query_one("#bench-note", Static), run_note(model, run))
        self._draw_results(model, run)
        items = self.query_one("#items-pane")
        # On 80 columns the results take the room once there are some.
        items.display = self.has_class("-wide") or not (run or {}).get("results")
        if items.display:
            self.query_one("#items", Static).update(latest_items(model, run, 60))

    def _bar_width(self, table: DataTable[Any]) -> int:
        width = table.size.width
        if width != self._width:
            # Columns only grow to fit their cells: start afresh so that the bar can shrink.
            self._width = width
            table.clear()
        # The other columns take 70 cells with their padding; the bar gets the rest.
        return max(6, min(120, width - 70))

    def _draw_results(self, model: ShowModel, run: Json | None) -> None:
        results = (run or {}).get("results") or {}
        pane = self.query_one("#results-pane")
        pane.display = bool(results)
        if not results or run is None:
            return
        table = self.query_one("#results", DataTable)
        teams = list(run["results"])
        columns = ["Suite", *teams]
        if columns != self._result_columns:
            self._result_columns = columns
            table.clear(columns=True)
            for label in columns:
                table.add_column(Text(label, style=team_style(model.team(label))
                                      if label in teams else ""), key=label)
        suites = [str(s["id"]) for s in run.get("suites") or []]
        fill_table(table, result_rows(run, teams, suites))

    # -- actions -----------------------------------------------------------------

    def _run(self) -> Json | None:
        run = self.model.bench()
        if run is None:
            self.console.show_error("No benchmark run yet: s starts one.")
        return run

    async def action_start(self) -> None:
        if not self.model.connected:
            # The same refusal the dialog would give, before reading the suites.
            try:
                await self.console.client.command("/api/bench", {})
            except CommandError as exc:
                self.console.show_error(exc)
            return
        try:
            self.suites = await self.console.client.get("/api/bench/suites")
        except CommandError as exc:
            self.console.show_error(exc)
            return
        self.app.push_screen(StartDialog(self.model, self.suites), self._started)

    def _started(self, answer: Json | None) -> None:
        if answer is not None:
            self.notify(f"benchmark run {answer.get('seq')} started", timeout=3)

    def action_pause(self) -> None:
        run = self._run()
        if run is not None:
            self.ask(f"Pause benchmark run {run['id']}",
                     f"Run {run['id']} pauses for every team: the items in flight finish, no "
                     "new one starts, and the progress on every screen shows it paused. "
                     "r resumes it where it stopped.",
                     "Pause the run", "/api/bench/pause", lambda _: {},
                     done=f"run {run['id']} paused")

    def action_resume(self) -> None:
        run = self._run()
        if run is not None:
            self.ask(f"Resume benchmark run {run['id']}",
                     f"Run {run['id']} goes on for every team from the items it had not "
                     "asked yet; the progress on every screen moves again.",
                     "Resume the run", "/api/bench/resume", lambda _: {},
                     done=f"run {run['id']} resumed")

    def action_cancel_run(self) -> None:
        run = self._run()
        if run is None:
            return
        entries = [self.model.bench_entry(t) for t in run.get("teams") or []]
        done = sum(int(e.get("done") or 0) for e in entries)
        total = sum(int(e.get("total") or 0) for e in entries)
        self.ask(f"Cancel benchmark run {run['id']}",
                 f"Run {run['id']} stops for every team, {done} of {total} items scored. "
                 "Items in flight are dropped; the run ends as cancelled and its results "
                 "cannot be entered. A new run starts from the first item.",
                 "Cancel the run", "/api/bench/cancel",
                 lambda v: {"reason": v.get("reason", "")},
                 [Field("reason", "Reason", placeholder="wrong suites")], danger=True,
                 done=f"run {run['id']} cancelled")

    def action_apply(self) -> None:
        run = self._run()
        if run is None:
            return
        if not run.get("results"):
            self.console.show_error(f"Run {run['id']} is {run.get('phase')}: only a finished "
                                    "run's results can be entered.")
            return
        criterion = str((self.suites or {}).get("criterion") or "benchmark")
        incomplete = [t for t, r in run["results"].items() if not r.get("complete")]
        fields = [Field("round", "Round (the run's own; empty for an exhibition run)",
                        value=str(run.get("round") or ""))]
        if incomplete:
            fields.append(Field("count_errors_as_wrong",
                                f"Count errors and unanswered items as wrong "
                                f"({', '.join(incomplete)})", check=True))

        def body(values: Values) -> Json:
            out: Json = {}
            if values.get("round") and values["round"] != run.get("round"):
                out["round"] = values["round"]
            if values.get("count_errors_as_wrong"):
                out["count_errors_as_wrong"] = True
            return out

        self.ask(f"Enter run {run['id']}'s results",
                 lambda v: apply_text(self.model, run, criterion, v),
                 "Enter the values", f"/api/bench/{run['id']}/apply", body, fields,
                 danger=True, done=f"run {run['id']}'s results entered as {criterion}")


class StartDialog(ActionDialog):
    """The suites and teams to run, the concurrency and the round; it says what will
    happen as they change."""

    def __init__(self, model: ShowModel, suites: Json) -> None:
        self.model = model
        self.catalog = {str(s["id"]): s for s in suites.get("suites") or []}
        self.criterion = str(suites.get("criterion") or "benchmark")
        self.default_concurrency = int(suites.get("concurrency") or 4)
        super().__init__("Start a benchmark run", self.explain_run, "Start the run",
                         self._send_start)

    def compose(self) -> ComposeResult:
        rnd = self.model.round() or {}
        rounds: list[tuple[str, str]] = [
            (f"{r['id']}: its {self.criterion} criterion", r["id"])
            for r in (self.model.state or {}).get("rounds") or []
            if r.get("phase") == "open"]
        rounds.append(("exhibition (no round, public accuracy)", EXHIBITION))
        teams = [t for t in self.model.teams() if t.get("endpoint")]
        with Vertical(id="dialog"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            with Horizontal(id="start-lists"):
                yield SelectionList[str](
                    *((f"{s['id']} ({s.get('items')})", sid, True)
                      for sid, s in self.catalog.items()), id="start-suites", compact=True)
                yield SelectionList[str](
                    *((f"{t['id']}  {t.get('name_en', '')}", t["id"],
                       t.get("public_status", t.get("status")) == "active") for t in teams),
                    id="start-teams", compact=True)
            with Horizontal(id="start-options"):
                yield Label("at a time ")
                yield Input(str(self.default_concurrency), id="field-concurrency",
                            type="integer", compact=True)
                yield Label(" for ")
                yield Select(rounds, value=rnd["id"] if rnd.get("phase") == "open"
                             else EXHIBITION, allow_blank=False, id="start-round",
                             compact=True)
            yield Static(self._explain_text(), id="dialog-explain", markup=False)
            yield from self.buttons()

    def on_mount(self) -> None:
        self.query_one("#start-suites", SelectionList).border_title = "Suites (space)"
        self.query_one("#start-teams", SelectionList).border_title = "Teams (space)"
        self.focus_first()

    def picked(self) -> tuple[list[str], list[str], str, str | None]:
        if not self.is_mounted:
            return list(self.catalog), [], str(self.default_concurrency), None
        suites = list(self.query_one("#start-suites", SelectionList).selected)
        teams = list(self.query_one("#start-teams", SelectionList).selected)
        concurrency = self.query_one("#field-concurrency", Input).value.strip()
        picked = self.query_one("#start-round", Select).value
        return suites, teams, concurrency, None if picked in (EXHIBITION, Select.BLANK) \
            else str(picked)

    def explain_run(self, _: Values) -> str:
        suites, teams, concurrency, round_id = self.picked()
        items = sum(int(self.catalog[s].get("items") or 0) for s in suites)
        what = (f"{items} items ({len(suites)} suites) against {len(teams)} teams, "
                f"{concurrency or '?'} at a time per team: {items * len(teams)} answers.")
        if round_id:
            return (f"{what} The results feed round {round_id}'s {self.criterion} criterion "
                    "once you enter them (a): sealed, the public sees only progress.")
        return (f"{what} An exhibition run: it feeds no round, and the public sees "
                "each team's accuracy as it goes.")

    def request(self) -> Json:
        suites, teams, concurrency, round_id = self.picked()
        body: Json = {"suites": suites, "teams": teams, "round": round_id}
        if concurrency:
            body["concurrency"] = int(concurrency) if concurrency.lstrip("-").isdigit() \
                else concurrency
        return body

    async def _send_start(self, _: Values) -> Json:
        desk = cast(Desk, self.app)
        return await desk.client.command("/api/bench", self.request())

    @on(SelectionList.SelectedChanged)
    @on(Select.Changed)
    def _picked_changed(self) -> None:
        self._changed()


# -- what the screen shows ---------------------------------------------------------


def run_line(model: ShowModel, run: Json | None) -> Text:
    line = Text()
    if run is None:
        line.append(" No benchmark run yet: s starts one.", style="dim")
        return line
    phase = str(run.get("phase"))
    line.append(f" Run {run.get('id')} ", style="bold reverse")
    line.append(f" {phase} ", style=PHASE_STYLE.get(phase, ""))
    if run.get("round"):
        line.append(f" {run['round']} sealed", style="bold magenta")
    else:
        line.append(" exhibition, public", style="bold")
    items = sum(int(s.get("items") or 0) for s in run.get("suites") or [])
    line.append(f" · {items} items × {len(run.get('teams') or [])} teams · "
                f"{run.get('concurrency')} at a time")
    if run.get("actor"):
        line.append(f" · by {run['actor']}", style="dim")
    if run.get("reason"):
        line.append(f" · {run['reason']}", style="yellow")
    return line


def run_note(model: ShowModel, run: Json | None) -> Text:
    """What the operator can do next, and why a team failed."""
    line = Text()
    if run is None:
        return line
    failed = run.get("failed") or {}
    for team, reason in failed.items():
        line.append(f" {team} failed: ", style="bold red")
        line.append(f"{reason} ")
    if failed:
        return line
    phase = run.get("phase")
    hint = {"running": " p pauses · c cancels", "paused": " r resumes · c cancels",
            "finished": " a enters the results · s starts another run",
            "cancelled": " s starts a new run"}.get(str(phase), "")
    line.append(hint, style="dim")
    return line


def bar(done: int, total: int, width: int) -> str:
    if total <= 0:
        return " " * width
    eighths = round(min(1.0, done / total) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


def progress_rows(model: ShowModel, run: Json | None, width: int) -> list[tuple[str, list[Any]]]:
    if run is None:
        return []
    rows: list[tuple[str, list[Any]]] = []
    for team_id in run.get("teams") or []:
        team = model.team(team_id)
        entry = model.bench_entry(team_id)
        status = str(entry.get("status") or "")
        done, total = int(entry.get("done") or 0), int(entry.get("total") or 0)
        errors = int(entry.get("errors") or 0)
        _, answered, acc, se = accuracy(((run.get("progress") or {}).get(team_id) or {})
                                        .values())
        figure = Text(f"{done:>3}/{total:<3}", style="bold" if done >= total > 0 else "")
        progress = Text(bar(done, total, width), style=STATUS_STYLE.get(status, "")
                        .replace("bold ", "").replace("white on red", "red") or "cyan")
        progress.append(" ")
        progress.append_text(figure)
        eta = entry.get("eta_s")
        rows.append((team_id, [
            Text(str(team.get("name_en", team_id))[:14], style=team_style(team)),
            Text(status, style=STATUS_STYLE.get(status, "")),
            progress,
            Text(str(errors), justify="right", style="bold red" if errors else "dim"),
            Text("—" if entry.get("ips") is None else f"{float(entry['ips']):.1f}",
                 justify="right"),
            Text("—" if eta is None else fmt_eta(float(eta)), justify="right"),
            Text(fmt_accuracy(acc, se) if answered else "—", justify="right"),
        ]))
    return rows


def fmt_eta(seconds: float) -> str:
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def fmt_accuracy(acc: float | None, se: float | None) -> str:
    if acc is None:
        return "—"
    text = f"{acc * 100:.1f}%"
    return text if se is None else f"{text} ± {se * 100:.1f}"


def result_rows(run: Json, teams: list[str], suites: list[str]
                ) -> list[tuple[str, list[Any]]]:
    """A row a suite, a column a team (they fit 80 columns that way): the accuracy and the
    suite's normalised score; then the score that apply enters, and whether it is whole."""
    results = run.get("results") or {}
    rows: list[tuple[str, list[Any]]] = [("--score--", [Text("score", style="bold"), *(
        Text(fmt_num((results[t].get("score") or {}).get("value")), justify="right",
             style="bold") for t in teams)])]
    for suite in suites:
        cells: list[Any] = [Text(suite)]
        for team in teams:
            s = (results[team].get("suites") or {}).get(suite)
            score = ((results[team].get("score") or {}).get("suites") or {}).get(suite)
            if s is None or s.get("accuracy") is None:
                cells.append(Text("—", justify="right", style="dim"))
                continue
            cell = Text(f"{s['accuracy'] * 100:.0f}% ", justify="right",
                        style="red" if s.get("errors") else "")
            cell.append(fmt_num(score, 0), style="dim")
            cells.append(cell)
        rows.append((suite, cells))
    rows.append(("--complete--", [Text("complete", style="dim"), *(
        Text("yes", style="green") if results[t].get("complete") else
        Text("no", style="bold red") for t in teams)]))
    return rows


def latest_items(model: ShowModel, run: Json | None, count: int) -> Text:
    """The items scored last, newest first: who, which item, right or wrong, what was read
    from the answer, and how long it took."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if run is None:
        return out
    shown = 0
    for event in model.recent_events():
        d = event.get("data") or {}
        if event.get("type") != "bench_item" or d.get("run") != run.get("id"):
            continue
        out.append(f"{d.get('team', ''):<8} {d.get('suite')}/{d.get('item')} ", style="dim")
        if d.get("status") != "ok":
            out.append(f"error: {d.get('error')}\n", style="bold red")
        else:
            right = bool(d.get("correct"))
            out.append("right" if right else "wrong", style="green" if right else "red")
            latency = d.get("latency_ms")
            extracted = d.get("extracted")
            out.append(f"  read {extracted!r}" if extracted not in (None, "") else "",
                       style="dim")
            out.append(f"  {latency / 1000:.2f} s\n" if isinstance(latency, int | float)
                       else "\n", style="dim")
        shown += 1
        if shown >= count:
            break
    return out


def apply_text(model: ShowModel, run: Json, criterion: str, values: Values) -> str:
    """What apply will enter: each team's value, and what it replaces."""
    round_id = str(values.get("round") or "")
    if not round_id:
        return (f"Run {run['id']} was an exhibition run: it feeds no round. Type a round to "
                f"enter its scores as that round's {criterion} values all the same.")
    current = ((model.round(round_id) or {}).get("values") or {}).get(criterion) or {}
    lines = [f"Each team's score becomes its {criterion} value in round {round_id}, with "
             f"the reason 'benchmark run {run['id']}'; a value already there is corrected. "
             "Sealed until the round is revealed."]
    for team_id, result in (run.get("results") or {}).items():
        value = fmt_num((result.get("score") or {}).get("value"))
        before = current.get(team_id)
        change = f"{fmt_num(before)} → {value}" if before is not None else value
        flag = "" if result.get("complete") else "  (not every item answered)"
        lines.append(f"  {team_id:<10} {change}{flag}")
    if values.get("count_errors_as_wrong"):
        lines.append("Errors and unanswered items count as wrong.")
    return "\n".join(lines)
