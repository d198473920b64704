// The client every overlay shares: it fetches the public state, then follows the stream
// (WebSocket /ws), applying each event's patch (the change the server computed for the
// public view, RFC 6902) to its copy of the state: the page never folds events itself, and
// looks at an event's type only to choose an animation. After any disconnect it
// reconnects by itself, with backoff, and resumes with ?since= so nothing is missed or
// shown twice; a server restart needs no reload (OBS browser sources are rarely reloaded).
// Only the public view ever reaches a page: it sends no token.

const MIN_BACKOFF = 500;
const MAX_BACKOFF = 10000;
// An overlay page says hello on its connection every few seconds (the desk's list of
// outputs, GET /api/outputs); the server closes a connection that says it much more often.
const HEARTBEAT_MS = 5000;

export class ShowClient extends EventTarget {
  constructor(base = location.origin) {
    super();
    this.base = base;
    this.state = null;
    this.seq = 0;
    this.live = { health: {}, demo: null };
    this.status = "connecting";
    this.backoff = MIN_BACKOFF;
    this.ws = null;
    this.build = null;  // the overlays' build this page was loaded with (from /api/state)
    this.obs = watchObs(() => this.hello());
    // Only the overlay pages announce themselves; the remote, the judge's and the voting
    // pages are not outputs.
    this.announces = location.pathname.startsWith("/overlays/");
    if (this.announces) setInterval(() => this.hello(), HEARTBEAT_MS);
  }

  // The page's hello: which page, its options and language, the build it runs, the seq it
  // has applied and, inside OBS, whether it is on Program or Preview (docs/protocol.md).
  hello() {
    if (!this.announces || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const q = new URLSearchParams(location.search);
    const opts = {};
    for (const [key, value] of q) {
      if (/^[a-z_]{1,16}$/.test(key) && Object.keys(opts).length < 8) opts[key] = clip(value, MAX_NAME);
    }
    const page = location.pathname.split("/").pop().replace(/\.html$/, "").slice(0, 32) || "index";
    this.ws.send(JSON.stringify({
      type: "hello", page, lang: q.get("lang") === "ko" ? "ko" : "en", options: opts,
      build: this.build, seq: this.seq, obs: this.obs ? this.obs.state() : null,
    }));
  }

  async start() {
    try {
      await this.fetchState();
    } catch {
      // The stream's snapshot will bring the state once the server answers.
    }
    this.connect();
    return this;
  }

  async fetchState() {
    const r = await fetch(`${this.base}/api/state`, { cache: "no-store" });
    const body = await r.json();
    this.state = body.state;
    this.seq = body.seq;
    if (this.build === null && body.build) this.build = body.build;  // kept: what we loaded with
    if (body.live) this.mergeLive({ full: true, ...body.live }, false);
    this.emit("state");
  }

  connect() {
    const url = new URL("/ws", this.base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.state) url.searchParams.set("since", String(this.seq));
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setStatus("live");
      this.hello();
    };
    ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.setStatus("reconnecting");
      const wait = this.backoff * (0.75 + Math.random() * 0.5);  // jitter: not all at once
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
      setTimeout(() => this.connect(), wait);
    };
  }

  onMessage(m) {
    this.backoff = MIN_BACKOFF;
    if (this.status !== "live") this.setStatus("live");
    if (m.type === "keepalive") return;
    if (m.type === "reload") { location.reload(); return; }  // the desk asked (POST /api/outputs/reload)
    if (m.type === "tick") { this.mergeLive(m.data, true); return; }
    if (m.type === "checkpoint") { this.checkpoint = m.data; this.emit("checkpoint"); return; }
    if (m.type === "snapshot") {
      this.state = m.data.state;
      this.seq = m.seq;
      this.emit("state");
      return;
    }
    if (m.seq === null || m.seq <= this.seq) return;  // already applied: resumed streams overlap
    if (m.patch && this.state) {
      try {
        this.state = applyPatch(this.state, m.patch);
      } catch {
        this.seq = m.seq;
        this.fetchState();  // it did not fit what we hold: read the state whole
        return;
      }
    }
    this.seq = m.seq;
    this.emit("event", m);
  }

  mergeLive(data, notify) {
    if (data.health) Object.assign(this.live.health, data.health);
    if (data.telemetry && this.state) {
      Object.assign(this.state.telemetry, data.telemetry);
      if (notify) this.emit("telemetry");
    }
    if (data.demo) {
      const d = data.demo;
      if (!this.live.demo || this.live.demo.id !== d.id || data.full || d.start) {
        this.live.demo = { id: d.id, teams: {} };
      }
      for (const [team, entry] of Object.entries(d.teams)) {
        const held = this.live.demo.teams[team] || { text: "", length: 0 };
        // Offsets count Unicode code points, as the server's strings do; `length` keeps the
        // count held, so that a frame costs the size of its piece, not of the whole answer.
        let { text, length } = held;
        if (entry.at === undefined || entry.at === null) {
          text = entry.text;  // a whole answer (GET /api/state or /api/demo): no offset
          length = codePoints(text);
        } else if (entry.at === length) {
          text += entry.text;
          length += codePoints(entry.text);
        } else if (entry.at < length) {
          text = [...text].slice(0, entry.at).join("") + entry.text;
          length = entry.at + codePoints(entry.text);
        } else {
          this.refreshDemo();  // a frame was missed: fetch the whole answer
        }
        this.live.demo.teams[team] = { ...held, ...entry, text, length };
      }
    }
    if (notify) this.emit("tick", data);
  }

  async refreshDemo() {
    if (this.demoRefreshing) return;
    this.demoRefreshing = true;
    try {
      const r = await fetch(`${this.base}/api/demo`, { cache: "no-store" });
      const body = await r.json();
      if (body.live) this.mergeLive({ full: true, demo: body.live }, true);
    } finally {
      this.demoRefreshing = false;
    }
  }

  setStatus(status) {
    this.status = status;
    this.emit("status");
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

// An event's patch (RFC 6902: add, replace, remove on JSON Pointer paths) applied to the
// state; returns the new state. Generic: it knows nothing of what the event means.
export function applyPatch(doc, ops) {
  for (const op of ops) {
    if (op.path === "") {
      doc = op.value;
      continue;
    }
    const parts = op.path.slice(1).split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop();
    let target = doc;
    for (const part of parts) {
      target = target[Array.isArray(target) ? Number(part) : part];
      if (target === null || typeof target !== "object") throw new Error(`no ${op.path}`);
    }
    if (Array.isArray(target)) {
      const i = last === "-" ? target.length : Number(last);
      if (op.op === "remove") target.splice(i, 1);
      else if (op.op === "add") target.splice(i, 0, op.value);
      else target[i] = op.value;
    } else if (op.op === "remove") {
      delete target[last];
    } else {
      target[last] = op.value;
    }
  }
  return doc;
}

// At most one draw a frame, however many events and frames arrive: returns request(animate).
// A batch of requests draws with animation only if every one of them asked for it, so a
// step back, a page that joins or one that reconnects shows its board as it is, unmoving.
export function onFrame(draw) {
  let pending = null;
  return (animate = true) => {
    if (pending === null) {
      requestAnimationFrame(() => { const a = pending; pending = null; draw(a); });
    }
    pending = pending === null ? animate : pending && animate;
  };
}

// A board page (scoreboard, reveal): redraw on every event; animate only moving forward.
export function followBoard(client, draw) {
  const request = onFrame(draw);
  client.addEventListener("state", () => request(false));
  client.addEventListener("event", (e) => {
    const m = e.detail;
    request(m.type === "reveal_step" ? m.data.step > m.data.from : true);
  });
}

// Inside OBS (obs-browser's window.obsstudio): whether this source is on Program (active),
// on Preview only (visible) or in neither; "unknown" until OBS has said; null outside OBS.
function watchObs(changed) {
  if (!window.obsstudio) return null;
  let active = null;
  let visible = null;
  window.addEventListener("obsSourceActiveChanged", (e) => { active = !!e.detail.active; changed(); });
  window.addEventListener("obsSourceVisibleChanged", (e) => { visible = !!e.detail.visible; changed(); });
  return {
    state: () => (active ? "program" : visible ? "preview"
      : active === false || visible === false ? "hidden" : "unknown"),
  };
}

// A graphic the desk takes and clears (POST /api/graphics/NAME/take|clear): the page
// fades out with its usual transition while the graphic is cleared, and in again once it
// is taken. The state says which, so every copy of the page obeys, and so does one opened
// later.
export function followGraphic(client, graphic) {
  const apply = () => {
    const graphics = client.state && client.state.graphics;
    const cleared = !!graphics && graphics[graphic] === false;
    document.body.classList.toggle("cleared", cleared);
    document.body.dataset.graphic = cleared ? "clear" : "on";
  };
  client.addEventListener("state", apply);
  client.addEventListener("event", apply);
}

// Page options from the address: ?lang=ko|en, ?team=ID, ?bg=COLOUR (a solid background when
// the page is not used as a transparent OBS source).
export function options() {
  const q = new URLSearchParams(location.search);
  const lang = q.get("lang") === "ko" ? "ko" : "en";
  document.documentElement.lang = lang;
  const bg = q.get("bg");
  if (bg) document.body.style.background = /^[0-9a-f]{3,8}$/i.test(bg) ? `#${bg}` : bg;
  return { lang, team: q.get("team"), bg };
}

// Connection trouble never goes on air: the page keeps its last good frame while the
// stream is down and catches up when it is back. It says so only to those who look at the
// page itself (<body data-link="down">, for the desk and for tests), and with ?fade=N it
// fades out after N seconds without a connection rather than hold a stale picture for good,
// and fades back in once it has caught up.
export function holdOnTrouble(client) {
  const fade = Number(new URLSearchParams(location.search).get("fade"));
  let timer = null;
  client.addEventListener("status", () => {
    const live = client.status === "live";
    document.body.dataset.link = live ? "live" : "down";
    if (live) {
      clearTimeout(timer);
      timer = null;
      document.body.classList.remove("stale");
    } else if (fade > 0 && timer === null) {
      timer = setTimeout(() => document.body.classList.add("stale"), fade * 1000);
    }
  });
}

// What of a model's (or anyone's) text may reach the screen: no control characters but the
// line break and the tab, and no bidirectional overrides or isolates, which would reorder
// the text around them on air.
const UNSHOWN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
export function plainText(text) {
  return text.replace(UNSHOWN, "");
}

function codePoints(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

// The server refuses longer names (showcase/core/text.py); a page still cuts what it is
// given, so a name from an older log cannot push a graphic off the screen.
export const MAX_NAME = 64;
export const MAX_REASON = 500;

export function name(obj, lang) {
  return clip((lang === "ko" ? obj.name_ko : obj.name_en) || obj.name_en || obj.id, MAX_NAME);
}

/** ``text`` as plainText, cut to at most ``max`` characters (code points, never half a
 *  pair), "…" last. */
export function clip(text, max) {
  const chars = Array.from(plainText(String(text ?? "")));
  return chars.length <= max ? chars.join("") : chars.slice(0, max - 1).join("") + "…";
}

export function fmt(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

export const TEXT = {
  en: { active: "", eliminated: "Eliminated", disqualified: "Disqualified",
        withdrawn: "Withdrawn", total: "Total", cut: "Cut",
        waiting: "waiting", connecting: "connecting", streaming: "live", ok: "done",
        error: "error", timeout: "timed out", skipped: "offline", cancelled: "cancelled",
        interrupted: "interrupted", rejected: "refused", ttft: "TTFT", tps: "tok/s",
        down: "down", through: "Through", reinstated: "Reinstated" },
  ko: { active: "", eliminated: "탈락", disqualified: "실격", withdrawn: "기권",
        total: "총점", cut: "컷", waiting: "대기",
        connecting: "연결 중", streaming: "생성 중", ok: "완료", error: "오류",
        timeout: "시간 초과", skipped: "연결 안 됨", cancelled: "취소", interrupted: "중단됨",
        rejected: "거부", ttft: "첫 토큰", tps: "토큰/초", down: "연결 안 됨", through: "진출",
        reinstated: "복귀" },
};
