// ?proof=1 on the scoreboard and the reveal: once the round on screen is published, a short
// fingerprint of the log's latest signed checkpoint (its size and the first characters of its
// root) with the address of /verify, so that a viewer can check on that page, or with
// `showcase verify`, that the result on air is the one the log signed.
import { currentRound } from "./board.js";

const TEXT = {
  en: (size, print, where) => `Verifiable result · ${size} entries signed · ${print} · ${where}`,
  ko: (size, print, where) => `검증 가능한 결과 · 기록 ${size}개 서명 · ${print} · ${where}`,
};

// The root (base64, line 3 of the note) -> "1635 7AB6 DB2A": its first six bytes in hex,
// readable aloud and free of the "/" and "+" of base64; /verify shows the same.
export function fingerprint(root) {
  const bytes = Array.from(atob(root).slice(0, 6), (c) => c.charCodeAt(0));
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return hex.match(/.{4}/g).join(" ");
}

function parse(note) {
  const lines = note.split("\n");
  const size = Number(lines[1]);
  return Number.isInteger(size) && lines[2] ? { size, root: lines[2] } : null;
}

export function showProof(client, lang, element = document.getElementById("proof")) {
  if (new URLSearchParams(location.search).get("proof") !== "1") return;
  let signed = null;
  let asked = false;
  const where = `${location.host}/verify`;
  const draw = () => {
    const state = client.state;
    const round = state && state.show ? currentRound(state) : null;
    const on = Boolean(signed && round && round.phase === "published");
    if (on) element.textContent = TEXT[lang](signed.size, fingerprint(signed.root), where);
    element.classList.toggle("on", on);
  };
  const load = async () => {  // a page opened after the last checkpoint was sent
    asked = true;
    const answer = await fetch("/api/log/checkpoint", { cache: "no-store" });
    if (answer.ok) signed = parse(await answer.text()) ?? signed;
    draw();
  };
  client.addEventListener("checkpoint", () => {
    signed = parse(client.checkpoint.note) ?? signed;
    draw();
  });
  client.addEventListener("state", () => { if (!asked) load().catch(() => {}); draw(); });
  client.addEventListener("event", draw);
}
