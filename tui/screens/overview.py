"""The show at a glance: the current round's live standings with the cut line, and each
team's endpoint: health, time to first token, decode rate and errors."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widgets import DataTable, Static

from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.style import STATUS_STYLE, team_style
from ..widgets.table import fill_table
from ..wording import describe, fmt_clock, fmt_ms, fmt_num, fmt_points
from .base import ConsoleScreen


class OverviewScreen(ConsoleScreen):
    SECTION = "overview"
    HELP = "the current round's live standings and the cut; each team's endpoint"

    def body(self) -> ComposeResult:
        yield Static(id="round-line", markup=False)
        with Container(id="panes"):
            with Vertical(id="standings-pane", classes="pane"):
                yield DataTable(id="standings", cursor_type="row", zebra_stripes=True)
            with Vertical(id="side"):
                with Vertical(id="endpoints-pane", classes="pane"):
                    yield DataTable(id="endpoints", cursor_type="row")
                with Vertical(id="latest-pane", classes="pane"):
                    yield Static(id="latest", markup=False)

    def on_mount(self) -> None:
        self.query_one("#standings-pane").border_title = "Standings (live, operator view)"
        self.query_one("#endpoints-pane").border_title = "Endpoints"
        self.query_one("#latest-pane").border_title = "Latest events (5 for the log)"
        endpoints = self.query_one("#endpoints", DataTable)
        endpoints.add_columns("Team", "Health", "TTFT p50/95", "tok/s p50/95", "Errors")

    def draw(self, model: ShowModel, force: bool) -> None:
        show_line(self.query_one("#round-line", Static), round_line(model))
        self._draw_standings(model)
        fill_table(self.query_one("#endpoints", DataTable), endpoint_rows(model))
        if self.has_class("-wide"):
            self.query_one("#latest", Static).update(latest_events(model))

    def _draw_standings(self, model: ShowModel) -> None:
        table = self.query_one("#standings", DataTable)
        criteria = [c["id"] for c in model.criteria()]
        labels = ["#", "Team", *criteria, "Total", "Status"]
        if [str(c.label) for c in table.ordered_columns] != labels:
            table.clear(columns=True)
            for label in labels:
                table.add_column(label, key=label)
        fill_table(table, standings_rows(model, criteria))


def latest_events(model: ShowModel, count: int = 30) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for event in model.recent_events(count):
        out.append(f"{event.get('seq'):>5} {fmt_clock(event.get('ts'))} ", style="dim")
        out.append(f"{event.get('type')} ", style="bold")
        out.append(f"{event.get('actor', '')}: ", style="cyan")
        out.append(describe(event) + "\n")
    return out


def round_line(model: ShowModel) -> Text:
    line = Text()
    rnd = model.round()
    if model.state is None:
        line.append(" waiting for the server…", style="dim")
        return line
    line.append(f" {model.title()} ", style="bold")
    if rnd is None:
        return line
    line.append(f" {rnd['id']} {rnd.get('name_en', '')} · {rnd.get('phase')}")
    if rnd.get("reveal") is not None:
        line.append(" · frozen", style="bold magenta")
    standings = rnd.get("standings") or {}
    missing = standings.get("missing") or []
    if rnd.get("phase") == "open":
        if missing:
            line.append(f" · {len(missing)} scores missing", style="yellow")
        elif standings:
            line.append(" · complete", style="green")
    cut = standings.get("cut") or {}
    if cut.get("tied"):
        line.append(f" · tied across the cut: {', '.join(cut['tied'])}", style="bold red")
    running = model.demo_running()
    if running is not None:
        line.append(f" · demo {running} running", style="bold cyan")
    return line


def standings_rows(model: ShowModel, criteria: list[str]) -> list[tuple[str, list[Any]]]:
    rnd = model.round() or {}
    standings = rnd.get("standings") or {}
    rows = standings.get("rows") or []
    missing = {(m["team"], m["criterion"]): m.get("detail", "") for m in
               standings.get("missing") or []}
    cut = standings.get("cut") or {}
    out: list[tuple[str, list[Any]]] = []
    survivors = cut.get("survivors")
    digits = model.precision()
    ranked = 0
    for row in rows:
        team = model.team(row["team"])
        if row.get("position") is not None:
            ranked += 1
        cells: list[Any] = [
            Text(str(row.get("rank") or "–"), justify="right"),
            Text(str(team.get("name_en", row["team"]))[:18], style=team_style(team)),
        ]
        for criterion in criteria:
            detail = missing.get((row["team"], criterion))
            points = (row.get("points") or {}).get(criterion)
            if detail:
                short = detail.split(" sheets")[0] if "sheets" in detail else "—"
                cells.append(Text(f"{fmt_points(points, digits)} ({short})"
                                  if points is not None else short, style="yellow",
                                  justify="right"))
            else:
                cells.append(Text(fmt_points(points, digits), justify="right"))
        cells.append(Text(fmt_points(row.get("total"), digits), style="bold", justify="right"))
        cells.append(row_status(row, team))
        out.append((row["team"], cells))
        if survivors is not None and ranked == survivors and row.get("position") is not None \
                and len([r for r in rows if r.get("position") is not None]) > survivors:
            rule = cut.get("rule") or "cut"
            out.append(("--cut--", [Text("✂", style="bold red"),
                                    Text(f"── cut: {rule} ", style="bold red"),
                                    *[Text("──", style="red") for _ in criteria],
                                    Text("──", style="red"), Text("")]))
    return out


def row_status(row: Json, team: Json) -> Text:
    status = row.get("status", "")
    if row.get("jury"):
        return Text("jury tie", style="bold red")
    if status != "active":
        sealed = team.get("public_status") != team.get("status")
        return Text(status + (" (sealed)" if sealed else ""), style=STATUS_STYLE.get(status, ""))
    if row.get("advances") is True:
        return Text("through", style="green")
    if row.get("advances") is False:
        return Text("OUT", style="bold red")
    return Text("")


def endpoint_rows(model: ShowModel) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for team in model.teams():
        ident = team["id"]
        if not team.get("endpoint"):
            name = Text(str(team.get("name_en", ident))[:18], style=team_style(team))
            out.append((ident, [name, Text("no endpoint", style="dim"), "", "", ""]))
            continue
        figures = model.telemetry.get(ident) or {}
        live = model.health.get(ident)
        recorded = figures.get("health") or {}
        up = (live or recorded).get("up")
        if up is None:
            health = Text("unchecked", style="dim")
        elif up:
            latency = (live or recorded).get("latency_ms")
            health = Text(f"up {fmt_ms(latency)} ms" if latency is not None else "up",
                          style="green")
        else:
            health = Text("DOWN", style="bold white on red")
            if recorded.get("error"):
                health.append(f" {recorded['error']}", style="red")
        rate = figures.get("error_rate")
        errors = Text(f"{rate * 100:.0f}% of {figures.get('recent', 0)}" if rate is not None
                      else "—", style="bold red" if rate else "")
        out.append((ident, [
            Text(str(team.get("name_en", ident))[:18], style=team_style(team)),
            health,
            f"{fmt_ms(figures.get('ttft_ms_p50'))}/{fmt_ms(figures.get('ttft_ms_p95'))} ms",
            f"{fmt_num(figures.get('decode_tps_p50'), 0)}/"
            f"{fmt_num(figures.get('decode_tps_p95'), 0)}",
            errors,
        ]))
    return out
