// The scoreboard: one row element per team, moved with transform only, so rows glide to
// their new places when the order changes; the cut line falls to its place the same way.
import { TEXT, fmt, name } from "./client.js";

export function currentRound(state) {
  return state.rounds.find((r) => r.id === state.current_round) || state.rounds[0];
}

// What the board shows now: the reveal's current step, else the published standings,
// else the teams with nothing announced yet.
export function boardOf(state) {
  const round = currentRound(state);
  if (round.reveal && round.reveal.current) return round.reveal.current.board;
  if (round.standings) {
    return { rows: round.standings.rows, cut: round.standings.cut, final: true };
  }
  return {
    rows: state.teams.map((t, i) => ({ team: t.id, status: t.status, position: i + 1,
                                       points: {}, total: null })),
    cut: null, final: false, unranked: true,  // positions here are only the show's order
  };
}

export class Board {
  constructor(root, state, lang) {
    this.root = root;
    this.lang = lang;
    this.rows = new Map();
    const criteria = state.criteria;
    root.classList.add("board", "panel");
    root.style.setProperty("--criteria", criteria.length);
    root.innerHTML = `<h1></h1><div class="head"><span></span><span></span><span></span>${
      criteria.map((c) => `<span>${name(c, lang)}</span>`).join("")}<span>${TEXT[lang].total}</span></div>
      <div class="rows"><div class="cutline"><span></span></div></div>`;
    this.title = root.querySelector("h1");
    this.body = root.querySelector(".rows");
    this.cut = root.querySelector(".cutline");
  }

  render(state) {
    const lang = this.lang;
    const round = currentRound(state);
    this.title.textContent = name(round, lang);
    const board = boardOf(state);
    const teams = new Map(state.teams.map((t) => [t.id, t]));
    const rowHeight = parseFloat(getComputedStyle(this.root).getPropertyValue("--row")) || 68;
    const order = [...board.rows].sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9));
    const seen = new Set();
    order.forEach((row, i) => {
      const team = teams.get(row.team);
      if (!team) return;
      seen.add(row.team);
      let el = this.rows.get(row.team);
      if (!el) {
        el = document.createElement("div");
        el.dataset.team = row.team;
        el.style.transform = `translateY(${i * (rowHeight + 8)}px)`;
        this.body.appendChild(el);
        this.rows.set(row.team, el);
      }
      const status = row.status || team.status;
      el.className = `row ${status}`;
      const cells = state.criteria.map((c) => {
        const v = row.points ? row.points[c.id] : null;
        return `<span class="pts num${v === null || v === undefined ? "" : " shown"}">${fmt(v)}</span>`;
      }).join("");
      const badge = TEXT[lang][status] ? `<span class="badge">${TEXT[lang][status]}</span>` : "";
      const pos = board.unranked ? "" : (row.rank ?? row.position ?? "–");
      el.innerHTML = `<span class="pos num">${pos}</span>
        <span class="bar" style="background:${team.colour}"></span>
        <span class="team">${name(team, lang)}${badge}</span>${cells}
        <span class="total num">${fmt(row.total)}</span>`;
      el.style.transform = `translateY(${i * (rowHeight + 8)}px)`;
    });
    for (const [id, el] of this.rows) {
      if (!seen.has(id)) { el.remove(); this.rows.delete(id); }
    }
    this.body.style.height = `${order.length * (rowHeight + 8)}px`;
    if (board.cut && board.cut.survivors < order.length) {
      this.cut.classList.add("on");
      this.cut.style.transform = `translateY(${board.cut.survivors * (rowHeight + 8) - 5}px)`;
      this.cut.querySelector("span").textContent =
        lang === "en" ? `${TEXT[lang].cut} · ${board.cut.rule}` : TEXT[lang].cut;
    } else {
      this.cut.classList.remove("on");
      this.cut.style.transform = "translateY(0px)";
    }
    const speed = round.reveal ? round.reveal.speed : 1;
    document.documentElement.style.setProperty("--speed", speed);
  }
}
