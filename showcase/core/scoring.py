"""Scoring of one round: raw values to points, totals, ranks and the cut line. Pure.

The rules, in the order they apply:

- a criterion fed by judges takes the mean of the sheets, trimmed (the highest and the
  lowest sheet dropped) when the criterion says so and there are at least three sheets;
- raw values become points by the criterion's normalisation, then are rounded half-up to
  the show's precision; the total is the sum of the rounded points, so what is shown adds up;
- teams are ordered by total, then by the round's tie-break criteria in turn; teams equal
  on all of these share a rank (1, 2, 2, 4);
- the cut rule says how many survive; when teams share a rank ACROSS the cut, nobody is
  ordered silently: they are flagged for the jury until a jury decision orders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from showcase.core.showfile import Criterion, Round, Show

ACTIVE = "active"
DISQUALIFIED = "disqualified"
WITHDRAWN = "withdrawn"
ELIMINATED = "eliminated"


def _dec(value: float | Decimal) -> Decimal:
    # repr() is the shortest text that reads back as the float: 70.5 stays 70.5
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def round_half_up(value: float | Decimal, precision: int) -> float:
    return float(_dec(value).quantize(Decimal(1).scaleb(-precision), ROUND_HALF_UP))


def aggregate_sheets(sheets: Iterable[float], trim: bool) -> float | None:
    """Mean of the judges' sheets; trimmed drops one highest and one lowest (three or more)."""
    values = sorted(_dec(v) for v in sheets)
    if not values:
        return None
    if trim and len(values) >= 3:
        values = values[1:-1]
    return float(sum(values) / len(values))


def normalise(criterion: Criterion, raw: float, best: float | None) -> Decimal:
    """Points for one raw value, before rounding, in decimal arithmetic.

    Decimal, and multiplying before dividing, keeps exact halves exact: 35 points at
    70.5 of 100 is 24.675 and rounds half-up to 24.68 (in floats it is 24.67499...).
    """
    value, points = _dec(raw), _dec(criterion.points)
    if criterion.normalise == "points":
        return value
    if criterion.normalise == "linear":
        baseline, maximum = _dec(criterion.baseline), _dec(criterion.maximum)
        clamped = min(maximum, max(baseline, value))
        return points * (clamped - baseline) / (maximum - baseline)
    # relative: the best team gets full points
    if not best or best <= 0:
        return Decimal(0)
    return points * max(Decimal(0), value) / _dec(best)


@dataclass(slots=True)
class Row:
    team: str
    status: str
    raw: dict[str, float | None]
    points: dict[str, float | None]
    sheets: dict[str, int]
    total: float
    complete: bool
    rank: int | None = None
    position: int | None = None
    advances: bool | None = None
    jury: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "status": self.status,
            "rank": self.rank,
            "position": self.position,
            "points": self.points,
            "raw": self.raw,
            "sheets": self.sheets,
            "total": self.total,
            "complete": self.complete,
            "advances": self.advances,
            "jury": self.jury,
        }


@dataclass(slots=True)
class Standings:
    round: str
    rows: list[Row]
    survivors: int
    cut_rule: str
    tied_at_cut: list[str] = field(default_factory=list)
    jury_applied: list[str] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def resolved(self) -> bool:
        return not self.tied_at_cut

    def row(self, team: str) -> Row | None:
        return next((r for r in self.rows if r.team == team), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "rows": [r.to_json() for r in self.rows],
            "cut": {
                "rule": self.cut_rule,
                "survivors": self.survivors,
                "tied": self.tied_at_cut,
                "resolved": self.resolved,
                "jury": self.jury_applied,
            },
            "complete": self.complete,
            "missing": self.missing,
        }


def compute_standings(
    show: Show,
    rnd: Round,
    roster: Mapping[str, str],
    values: Mapping[str, Mapping[str, float]],
    sheets: Mapping[str, Mapping[str, Mapping[str, float]]],
    jury_order: list[str] | None = None,
) -> Standings:
    """Standings of one round.

    ``roster`` maps each team in the round to its status (active, disqualified, withdrawn);
    ``values[criterion][team]`` holds single raw values and ``sheets[criterion][team][judge]``
    judges' sheets; ``jury_order`` lists teams best first, as the jury decided a tie.
    A jury order applies only while it names exactly the teams tied across the cut: if a
    correction changes who is tied, the tie is flagged again for a new decision.
    """
    judges = len(show.judges)
    ranked = [t for t, status in roster.items() if status in (ACTIVE, ELIMINATED)]
    raw: dict[str, dict[str, float | None]] = {t: {} for t in roster}
    counts: dict[str, dict[str, int]] = {t: {} for t in roster}
    missing: list[dict[str, str]] = []
    for crit in show.criteria:
        for team in roster:
            if crit.source == "judges":
                team_sheets = sheets.get(crit.id, {}).get(team, {})
                raw[team][crit.id] = aggregate_sheets(team_sheets.values(), crit.trim)
                counts[team][crit.id] = len(team_sheets)
                if len(team_sheets) < judges and team in ranked:
                    missing.append({"criterion": crit.id, "team": team,
                                    "detail": f"{len(team_sheets)} of {judges} sheets"})
                continue
            raw[team][crit.id] = values.get(crit.id, {}).get(team)
            if raw[team][crit.id] is None and team in ranked:
                missing.append({"criterion": crit.id, "team": team, "detail": "no value"})

    points: dict[str, dict[str, float | None]] = {t: {} for t in roster}
    for crit in show.criteria:
        present = [raw[t][crit.id] for t in ranked if raw[t][crit.id] is not None]
        best = max(present, default=None)  # type: ignore[type-var]
        for team in roster:
            value = raw[team][crit.id]
            points[team][crit.id] = (
                None if value is None
                else round_half_up(normalise(crit, value, best), show.precision)
            )

    rows = {
        team: Row(
            team=team,
            status=roster[team],
            raw=raw[team],
            points=points[team],
            sheets=counts[team],
            total=round_half_up(sum(_dec(p) for p in points[team].values() if p is not None),
                                show.precision),
            complete=not any(m["team"] == team for m in missing),
        )
        for team in roster
    }

    def merit(team: str) -> tuple[float, ...]:
        row = rows[team]
        return (-row.total, *(-(row.points.get(c) or 0.0) for c in rnd.tie_break))

    order = sorted(ranked, key=merit)  # stable: equal teams keep roster order for display
    n = len(order)
    cut = rnd.cut
    if cut.kind == "eliminate_bottom":
        survivors = max(0, n - int(cut.value))
    elif cut.kind == "advance":
        survivors = min(n, int(cut.value))
    elif cut.kind == "below":
        survivors = sum(1 for t in order if rows[t].total >= cut.value)
    else:
        survivors = n

    tied: list[str] = []
    if 0 < survivors < n and merit(order[survivors - 1]) == merit(order[survivors]):
        level = merit(order[survivors])
        tied = [t for t in order if merit(t) == level]
    decided: list[str] = []
    if tied and jury_order and sorted(jury_order) == sorted(tied):
        start = order.index(tied[0])
        order[start:start + len(tied)] = decided = list(jury_order)
        tied = []

    for i, team in enumerate(order):
        prev = order[i - 1] if i else None
        shares = prev is not None and merit(prev) == merit(team) and team not in decided
        rows[team].rank = rows[prev].rank if shares and prev is not None else i + 1
        rows[team].position = i + 1
    for i, team in enumerate(order):
        rows[team].jury = team in tied
        rows[team].advances = None if team in tied else i < survivors

    excluded = [t for t in roster if t not in ranked]
    return Standings(
        round=rnd.id,
        rows=[rows[t] for t in order] + [rows[t] for t in excluded],
        survivors=survivors,
        cut_rule=cut.describe(),
        tied_at_cut=tied,
        jury_applied=decided,
        missing=missing,
    )
