// The scoreboard: one row element per team, placed with transform only. When the order
// changes, each row plays from where it was to its new place (FLIP, with the Web
// Animations API): a row that climbs lifts out of the table as it goes, the others glide.
// At the cut, the line falls into the gap it opens between the survivors and the rest.
// Points that arrive pop and the row flashes. Everything that moves is transform or
// opacity, and every duration is divided by the reveal's speed.
//
// render(state, { animate: false }) shows the board as it is, with no motion: a page
// that joins, reconnects, or follows the presenter back shows that step's board exactly.
import { TEXT, fmt, name } from "./client.js";

const GAP = 8;  // between rows
const CUT_GAP = 48;  // the space the cut line opens below the survivors
const EASE = "cubic-bezier(.2,.8,.2,1)";
const DROP = "cubic-bezier(.34,1.45,.55,1)";  // a fall that overshoots and settles

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
  const out = outBefore(state, round);
  return {
    rows: state.teams.filter((t) => !out.has(t.id))
      .map((t, i) => ({ team: t.id, status: t.status, position: i + 1, points: {}, total: null })),
    cut: null, final: false, unranked: true,  // positions here are only the show's order
  };
}

// The teams an earlier published round left out (eliminated, disqualified, withdrawn): a
// later round's board, before its results, lists only the teams still in the contest.
function outBefore(state, round) {
  const out = new Set();
  for (const r of state.rounds) {
    if (r.id === round.id) break;
    for (const row of (r.standings && r.standings.rows) || []) {
      if (row.status !== "active") out.add(row.team);
    }
  }
  return out;
}

export function speedOf(state) {
  const round = currentRound(state);
  return round.reveal && round.reveal.speed ? round.reveal.speed : 1;
}

// The translation a running animation has put an element at now.
function shownY(el) {
  const t = getComputedStyle(el).transform;
  return t && t !== "none" ? new DOMMatrixReadOnly(t).m42 : 0;
}

export class Board {
  // focus: a team whose row stands out (?team=), for a team's own stream.
  constructor(root, state, lang, focus = null) {
    this.root = root;
    this.lang = lang;
    this.focus = focus;
    this.rows = new Map();
    this.criteria = state.criteria.map((c) => c.id);
    root.classList.add("board", "panel");
    root.style.setProperty("--criteria", this.criteria.length);
    root.innerHTML = `<h1></h1><div class="head"><span></span><span></span><span></span></div>
      <div class="rows"><div class="cutline"><span></span></div></div>`;
    const head = root.querySelector(".head");
    // Each criterion with its maximum ("Benchmarks /40"), so a viewer reads 28.48 of 40.
    const most = state.criteria.reduce((sum, c) => sum + c.points, 0);
    for (const [label, points] of [...state.criteria.map((c) => [name(c, lang), c.points]),
                                   [TEXT[lang].total, most]]) {
      const cell = document.createElement("span");
      const of = document.createElement("small");
      of.textContent = ` /${points}`;
      cell.append(label, of);
      head.append(cell);
    }
    this.title = root.querySelector("h1");
    this.body = root.querySelector(".rows");
    this.cut = root.querySelector(".cutline");
    this.cutLabel = this.cut.querySelector("span");
    this.cutY = null;
    this.rowHeight = parseFloat(getComputedStyle(root).getPropertyValue("--row")) || 68;
  }

  row(id, team) {
    let row = this.rows.get(id);
    if (row) return row;
    const el = document.createElement("div");
    el.className = "row";
    el.dataset.team = id;
    el.innerHTML = `<i class="flash"></i><i class="tint"></i><span class="pos num"></span>
      <span class="bar"></span><span class="team"><span class="who"></span><span class="badge"></span><span class="reason"></span></span>
      ${this.criteria.map(() => "<span class=\"pts num\"></span>").join("")}
      <span class="total num"></span>`;
    el.querySelector(".bar").style.background = team.colour;
    el.querySelector(".who").textContent = name(team, this.lang);
    row = {
      el, y: null, index: null, shown: {}, motion: null,
      pos: el.querySelector(".pos"), badge: el.querySelector(".badge"),
      reason: el.querySelector(".reason"),
      pts: [...el.querySelectorAll(".pts")], total: el.querySelector(".total"),
      flash: el.querySelector(".flash"),
    };
    this.body.append(el);
    this.rows.set(id, row);
    return row;
  }

  render(state, { animate = false } = {}) {
    const lang = this.lang;
    const speed = speedOf(state);
    const ms = (base) => base / speed;
    const round = currentRound(state);
    const roundName = name(round, lang);
    if (this.title.textContent !== roundName) this.title.textContent = roundName;
    const board = boardOf(state);
    const teams = new Map(state.teams.map((t) => [t.id, t]));
    const order = [...board.rows].filter((r) => teams.has(r.team))
      .sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9));
    const ranked = order.filter((r) => r.position !== null && r.position !== undefined).length;
    const cut = board.cut && board.cut.survivors < order.length ? board.cut.survivors : null;
    const step = this.rowHeight + GAP;
    const yOf = (i) => i * step + (cut !== null && i >= cut ? CUT_GAP : 0);
    document.documentElement.style.setProperty("--speed", speed);
    this.root.classList.toggle("still", !animate);
    if (!animate) {
      // Whatever was playing stops where it would end: the board is shown as it is.
      for (const a of this.root.getAnimations({ subtree: true })) a.cancel();
      for (const row of this.rows.values()) row.motion = null;
    }

    const seen = new Set();
    order.forEach((data, i) => {
      seen.add(data.team);
      const team = teams.get(data.team);
      const row = this.row(data.team, team);
      const status = data.status || team.status;
      const y = yOf(i);
      const fresh = row.y === null;
      const popped = this.fill(row, { ...data, reason: data.reason || team.reason }, status,
                               i >= (cut ?? Infinity), board.unranked);
      if (row.y !== y || fresh) this.move(row, y, i, fresh, animate, ms);
      if (animate && !fresh && popped.length) this.pop(row, popped, ms);
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) { row.el.remove(); this.rows.delete(id); }
    }
    this.body.style.height = `${yOf(order.length - 1) + this.rowHeight}px`;
    this.placeCut(cut, cut === null ? null : yOf(cut) - CUT_GAP / 2 - GAP / 2, board,
                  ranked, animate, ms);
  }

  // Writes the row's cells where they changed; returns the cells that got new points.
  fill(row, data, status, below, unranked) {
    const put = (key, el, value) => {
      if (row.shown[key] === value) return false;
      const had = row.shown[key];
      row.shown[key] = value;
      el.textContent = value;
      return had !== undefined;
    };
    const popped = [];
    const focus = row.el.dataset.team === this.focus ? " focus" : "";
    const rowClass = `row ${status}${below ? " below" : ""}${focus}`;
    if (row.el.className !== rowClass) row.el.className = rowClass;
    // A disqualified team's points do not count, whichever way the round was announced;
    // a row none of whose points is announced yet has neither a rank nor a total.
    const counts = status !== "disqualified";
    const announced = Object.values(data.points || {}).some((v) => v !== null && v !== undefined);
    const ranked = !unranked && counts && announced;
    put("pos", row.pos, ranked ? String(data.rank ?? data.position ?? "–") : "");
    put("badge", row.badge, TEXT[this.lang][status] || "");
    put("reason", row.reason, status === "disqualified" ? (data.reason || "") : "");
    this.criteria.forEach((c, i) => {
      const v = counts && data.points ? data.points[c] : null;
      const shown = v !== null && v !== undefined;
      row.pts[i].classList.toggle("shown", shown);
      if (put(`pts${i}`, row.pts[i], fmt(v)) && shown) popped.push(row.pts[i]);
    });
    const total = ranked ? data.total : null;
    if (put("total", row.total, fmt(total)) && total) popped.push(row.total);
    return popped;
  }

  move(row, y, index, fresh, animate, ms) {
    const el = row.el;
    const from = fresh ? y : (row.motion ? shownY(el) : row.y);
    const climbing = !fresh && row.index !== null && index < row.index;
    if (row.motion) row.motion.cancel();
    row.motion = null;
    row.y = y;
    row.index = index;
    el.style.transform = `translateY(${y}px)`;
    el.style.zIndex = "";
    if (!animate) return;
    if (fresh) {
      row.motion = el.animate([{ opacity: 0 }, { opacity: 1 }], { duration: ms(500) });
      return;
    }
    if (from === y) return;
    if (climbing) {
      // It lifts out of the table, rises past the rows it beats, and settles.
      el.style.zIndex = "2";
      const lift = `translateY(${from - 6}px) scale(1.04)`;
      row.motion = el.animate([
        { transform: `translateY(${from}px) scale(1)`, easing: "ease-out" },
        { transform: lift, offset: 0.2, easing: EASE },
        { transform: `translateY(${y - 6}px) scale(1.04)`, offset: 0.8, easing: "ease-in-out" },
        { transform: `translateY(${y}px) scale(1)` },
      ], { duration: ms(1400) });
      el.animate([{ opacity: 0 }, { opacity: 1, offset: 0.2 }, { opacity: 1, offset: 0.8 },
                  { opacity: 0 }], { duration: ms(1400), pseudoElement: "::after" });
    } else {
      row.motion = el.animate([{ transform: `translateY(${from}px)` },
                               { transform: `translateY(${y}px)` }],
                              { duration: ms(1000), easing: EASE });
    }
    row.motion.onfinish = () => { el.style.zIndex = ""; row.motion = null; };
  }

  pop(row, cells, ms) {
    for (const cell of cells) {
      cell.animate([{ transform: "scale(1.35)", opacity: 0.2 }, { transform: "scale(1)", opacity: 1 }],
                   { duration: ms(700), easing: DROP });
    }
    row.flash.animate([{ opacity: 0 }, { opacity: 0.5, offset: 0.25 }, { opacity: 0 }],
                      { duration: ms(1100) });
  }

  placeCut(survivors, y, board, ranked, animate, ms) {
    const on = survivors !== null;
    const cut = this.cut;
    if (on) {
      const leave = ranked - survivors;
      this.cutLabel.textContent = this.lang === "ko"
        ? `${TEXT.ko.cut} · ${survivors}팀 진출${leave > 0 ? ` · 하위 ${leave}팀 탈락` : ""}`
        : `${TEXT.en.cut} · ${board.cut.rule || `${survivors} go through`}`;
    }
    cut.classList.toggle("on", on);
    if (!on) { this.cutY = null; return; }
    const from = this.cutY;
    this.cutY = y;
    cut.style.transform = `translateY(${y}px)`;
    if (!animate || from === y) return;
    if (from === null) {
      // The line falls from above the table into the gap it opens.
      cut.animate([{ transform: `translateY(${y - 260}px)`, opacity: 0 },
                   { transform: `translateY(${y - 130}px)`, opacity: 1, offset: 0.35 },
                   { transform: `translateY(${y}px)`, opacity: 1 }],
                  { duration: ms(1300), easing: DROP });
    } else {
      cut.animate([{ transform: `translateY(${from}px)` }, { transform: `translateY(${y}px)` }],
                  { duration: ms(1000), easing: EASE });
    }
  }
}
