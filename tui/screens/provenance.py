"""Weight provenance checks: start one (a team's declared weights against a reference),
watch it read, see each recorded check's verdicts, and announce a finding, which unseals it
for the public and the overlay card (overlays/provenance.html)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..client import CommandError
from ..model import Json, ShowModel
from ..widgets.bars import show_line
from ..widgets.dialog import Field, Values
from ..widgets.table import fill_table
from .base import ConsoleScreen

VERDICT_STYLE = {"derived": "bold white on red", "independent": "bold green",
                 "inconclusive": "bold yellow"}
STATUS_STYLE = {"running": "bold cyan", "failed": "bold white on red", "sealed": "yellow",
                "announced": "bold green"}
SHORT = {"vision": "vision", "language": "lang", "embeddings": "emb", "tokenizer": "tok"}
#: Seconds between reads of GET /api/provenance while this screen is on view: a check's
#: progress is not an event, and a failed check records none.
POLL = 1.0


class ProvenanceScreen(ConsoleScreen):
    SECTION = "provenance"
    HELP = ("weight provenance: check a team's declared weights against a reference, "
            "read the verdicts, announce a finding")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start a check"),
        Binding("a", "announce", "Announce"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Json] = []  # the last GET /api/provenance answer's runs
        self.poll_error = ""

    def body(self) -> ComposeResult:
        yield Static(id="prov-line", markup=False)
        with Vertical(id="prov-pane", classes="pane"):
            yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
        yield Static(id="prov-detail", markup=False)

    def on_mount(self) -> None:
        self.query_one("#prov-pane").border_title = "Checks (operator view; sealed until announced)"
        self.query_one("#checks", DataTable).add_columns(
            "Check", "Team", "Reference", "Part", "Status", "Verdicts")
        self.query_one("#checks", DataTable).focus()
        self.set_interval(POLL, self.poll)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.poll()

    @work(exclusive=True, group="provenance-poll", exit_on_error=False)
    async def poll(self) -> None:
        if self.app.screen is not self or not self.model.connected:
            return
        try:
            answer = await self.console.client.get("/api/provenance")
        except CommandError as exc:
            self.poll_error = str(exc)
        else:
            self.runs, self.poll_error = list(answer.get("runs") or []), ""
        self.redraw(force=True)

    def on_data_table_row_highlighted(self) -> None:
        self._draw_detail()

    def draw(self, model: ShowModel, force: bool) -> None:
        checks = rows(model, self.runs)
        recorded = recorded_checks(model)
        sealed = sum(c.get("announced") is None for c in recorded)
        running = sum(r.get("status") == "running" for r in self.runs)
        line = Text(f" {len(recorded)} recorded, {sealed} sealed, {running} running ",
                    style="bold")
        if self.poll_error:
            line.append(f"  progress not read: {self.poll_error}", style="yellow")
        show_line(self.query_one("#prov-line", Static), line)
        fill_table(self.query_one("#checks", DataTable), checks)
        self._draw_detail()

    def _draw_detail(self) -> None:
        selected = self._selected()
        show_line(self.query_one("#prov-detail", Static),
                  detail(selected) if selected else Text(" s starts a check", style="dim"))

    def _selected(self) -> Json | None:
        table = self.query_one("#checks", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return entries(self.model, self.runs).get(str(key))

    # -- actions -----------------------------------------------------------------

    def action_start(self) -> None:
        teams = ", ".join(str(t.get("id")) for t in self.model.teams())

        def body(values: Values) -> Json:
            return {"team": str(values.get("team") or "").strip(),
                    "reference": str(values.get("reference") or "").strip(),
                    "component": str(values.get("component") or "all").strip() or "all"}

        self.ask("Start a provenance check",
                 "The team's declared weights ([provenance.weights] in the show file) are "
                 "compared with the reference, tensor by tensor, on the server. It takes "
                 "minutes for a large model; the result is recorded sealed: only this "
                 "console sees it until you announce it (a).",
                 "Start the check", "/api/provenance", body,
                 [Field("team", f"Team ({teams})", required=True),
                  Field("reference", "Reference (a name from the show file, or a path "
                        "under its roots)", required=True),
                  Field("component", "Component: vision, language or all", value="all")],
                 done="provenance check started")

    def action_announce(self) -> None:
        selected = self._selected()
        if selected is None or selected.get("seq") is None or "components" not in selected:
            self.console.show_error("Pick a recorded check (one with a seq) to announce.")
            return
        if selected.get("announced") is not None:
            self.console.show_error(f"Check {selected['seq']} was announced at seq "
                                    f"{selected['announced']}.")
            return
        seq = selected["seq"]
        verdicts = "; ".join(f"{c['component']}: {c['verdict']}"
                             for c in selected.get("components") or [])
        self.ask(f"Announce check {seq} of {selected.get('team')}",
                 f"Check {seq} ({selected.get('team')} against "
                 f"{(selected.get('against') or {}).get('label')}: {verdicts}) becomes "
                 "public: every viewer's page and the provenance card show its verdicts, "
                 "figures and file hashes. An announcement cannot be taken back.",
                 "Announce the finding", "/api/provenance/announce",
                 lambda _: {"check": seq}, danger=True,
                 done=f"check {seq} announced")


def recorded_checks(model: ShowModel) -> list[Json]:
    found = (model.state or {}).get("provenance")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def entries(model: ShowModel, runs: list[Json]) -> dict[str, Json]:
    """Every check by its row key: recorded ones by seq (from the state, which every
    console sees), then runs not recorded (running, or failed) by their id."""
    out: dict[str, Json] = {f"seq-{c['seq']}": c for c in recorded_checks(model)}
    for run in runs:
        if run.get("seq") is None:
            out[str(run["id"])] = run
    return out


def rows(model: ShowModel, runs: list[Json]) -> list[tuple[str, list[Any]]]:
    out = []
    for key, e in entries(model, runs).items():
        if "components" in e:
            status = "sealed" if e.get("announced") is None else "announced"
            label = (e.get("against") or {}).get("label")
            verdicts = Text()
            for c in e.get("components") or []:
                verdicts.append(f"{SHORT.get(c['component'], c['component'])} ", style="dim")
                verdicts.append(f"{c['verdict']}  ", style=VERDICT_STYLE.get(c["verdict"], ""))
            check = f"seq {e['seq']}"
        else:
            status, label, check = str(e.get("status")), e.get("label"), str(e.get("id"))
            progress = e.get("progress") or {}
            total = int(progress.get("total") or 0)
            verdicts = Text(f"{100 * int(progress.get('done') or 0) // total}% read"
                            if total and status == "running" else str(e.get("error") or ""))
        out.append((key, [check, str(e.get("team")), str(label or ""),
                          str(e.get("component") or ""),
                          Text(status, style=STATUS_STYLE.get(status, "")), verdicts]))
    return out


def detail(e: Json) -> Text:
    """The selected check: each component's figure line and what it means, or the error."""
    text = Text()
    if "components" not in e:
        text.append(f" {e.get('id')} {e.get('status')}", style="bold")
        if e.get("error"):
            text.append(f": {e['error']}", style="red")
            if e.get("detail"):
                text.append(f" ({e['detail']})")
        return text
    text.append(f" seq {e['seq']}: {e.get('verdict')}",
                style=VERDICT_STYLE.get(str(e.get("verdict")), "bold"))
    text.append(f"  {e.get('seconds')} s, {int(e.get('bytes_read') or 0) / 2**20:,.1f} MiB read")
    for c in e.get("components") or []:
        text.append(f"\n {c['component']}: ", style="bold")
        text.append(str(c.get("figure_en") or ""))
    return text
