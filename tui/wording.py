"""How the console words things: numbers, points, times, and one line per event of the
log (the Log and Overview screens), with the filter the Log screen's "/" applies."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from typing import Any

from .model import Json


def fmt_num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def accuracy(counts: Iterable[Json]) -> tuple[int, int, float | None, float | None]:
    """Items right, items answered, accuracy and its standard error, as the server reports
    them for a public run (17.4): errors are left out, and no error below 2 items."""
    correct = answered = 0
    for c in counts:
        correct += int(c.get("correct") or 0)
        answered += int(c.get("done") or 0) - int(c.get("errors") or 0)
    if answered <= 0:
        return correct, answered, None, None
    p = correct / answered
    stderr = math.sqrt(p * (1 - p) / (answered - 1)) if answered >= 2 else None
    return correct, answered, p, stderr


def fmt_points(value: Any, precision: int = 2) -> str:
    """Points as the show rounds them: always ``precision`` decimals."""
    return "—" if value is None else f"{float(value):.{precision}f}"


#: The server's refusals name the API call that would help ("unfreeze it first: POST
#: /api/rounds/r1/unfreeze"); at the desk the help is a key. (pattern, section, key, what the
#: key does there); tests/tui/test_safety.py checks that each key is bound on its screen.
DESK_KEYS: tuple[tuple[str, str, str, str], ...] = (
    (r'POST /api/reveal/arm with \{"to": (\d+)\}, then next', "reveal", "a",
     "to arm step {0}, then n to show it"),
    (r"POST /api/rounds/[\w-]+/unfreeze", "reveal", "u", "to unfreeze the round"),
    (r"POST /api/rounds/[\w-]+/freeze", "reveal", "z", "to freeze the round"),
    (r"POST /api/rounds/[\w-]+/jury", "reveal", "J", "to record the jury's order"),
    (r"POST /api/demo/cancel", "demo", "ctrl+x", "to cancel the demo"),
    (r"POST /api/bench/cancel", "bench", "c", "to cancel the run"),
    (r"POST /api/bench\b", "bench", "s", "to start a run"),
)
SECTION_KEYS = {"overview": "1", "demo": "2", "scores": "3", "reveal": "4", "log": "5",
                "bench": "6", "outputs": "7", "votes": "8"}


def key_label(key: str) -> str:
    return key.replace("ctrl+", "Ctrl+").replace("alt+", "Alt+")


def in_keys(text: str) -> str:
    """A refusal as the desk acts on it: each API call it names becomes the key to press."""
    for pattern, section, key, does in DESK_KEYS:
        where = (f"press {key_label(key)} on the {section.capitalize()} screen "
                 f"({SECTION_KEYS[section]}) ")
        text = re.sub(pattern, lambda m, where=where, does=does:  # type: ignore[misc]
                      where + does.format(*m.groups()), text)
    return text


def fmt_ms(value: Any) -> str:
    return "—" if value is None else f"{float(value):.0f}"


def fmt_clock(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return ""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def event_team(event: Json) -> str:
    data = event.get("data") or {}
    team = data.get("team")
    if isinstance(team, dict):
        return str(team.get("id", ""))
    return str(team or "")


def describe(event: Json) -> str:
    """One line that says what an operator event did, for the log screen."""
    kind = event.get("type", "")
    d: Json = event.get("data") or {}
    reason = f" ({d['reason']})" if d.get("reason") else ""
    match kind:
        case "score_entered":
            who = f" judge {d['judge']}" if d.get("judge") else ""
            value = "cleared" if d.get("value") is None else fmt_num(d.get("value"))
            if "previous" in d:
                value = f"{fmt_num(d['previous'])} → {value}"
            return f"{d.get('criterion')} {d.get('team')}{who}: {value}{reason}"
        case "team_disqualified" | "team_withdrawn" | "team_reinstated":
            announced = "announced" if d.get("announce") else "sealed"
            return f"{d.get('team')} in {d.get('round')}, {announced}{reason}"
        case "team_added":
            return f"{event_team(event)} joins {d.get('round')}{reason}"
        case "team_health":
            state = "up" if d.get("up") else "DOWN"
            latency = f" {fmt_ms(d.get('latency_ms'))} ms" if d.get("latency_ms") else ""
            error = f": {d['error']}" if d.get("error") else ""
            return f"{d.get('team')} {state}{latency}{error}"
        case "demo_started":
            return f"demo {d.get('demo')} to {', '.join(d.get('teams') or [])}: {d.get('prompt')}"
        case "demo_result" | "request_measured":
            metrics = d.get("metrics") or {}
            figures = ""
            if metrics.get("ttft_ms") is not None:
                figures = (f" ttft {fmt_ms(metrics['ttft_ms'])} ms,"
                           f" {fmt_num(metrics.get('decode_tps'), 1)} tok/s")
            elif metrics.get("e2e_ms") is not None:  # a whole answer: no first token to time
                figures = f" e2e {fmt_ms(metrics['e2e_ms'])} ms"
            if (metrics.get("queue_ms") or 0) >= 1:
                # The proxy's own wait for a connection: the desk sees it, the air never does.
                figures += f", queued {fmt_ms(metrics['queue_ms'])} ms"
            error = f": {d['error']}" if d.get("error") else ""
            source = f"demo {d.get('demo')}" if kind == "demo_result" else "proxy"
            return f"{d.get('team')} {source} {d.get('status')}{figures}{error}"
        case "demo_cancelled":
            return f"demo {d.get('demo')} cancelled{reason}"
        case "round_started" | "round_frozen":
            return str(d.get("round", ""))
        case "round_unfrozen":
            return f"{d.get('round')}{reason}"
        case "round_published":
            eliminated = ", ".join(d.get("eliminated") or []) or "nobody"
            return f"{d.get('round')}: eliminated {eliminated}"
        case "jury_decided":
            return f"{d.get('round')}: {' > '.join(d.get('order') or [])}{reason}"
        case "reveal_step":
            text = (d.get("reveal") or {}).get("text") or "(start)"
            return f"{d.get('action')} {d.get('from')}→{d.get('step')}: {text}"
        case "reveal_armed":
            return f"step {d.get('step')} armed ({d.get('team')})"
        case "reveal_locked":
            return ("locked" if d.get("locked") else "unlocked") + reason
        case "reveal_speed":
            return f"speed {fmt_num(d.get('speed'))}"
        case "bench_started":
            suites = ", ".join(str(x.get("id")) for x in d.get("suites") or [])
            feeds = f"for {d['round']}" if d.get("round") else "exhibition"
            return (f"run {d.get('run')} {feeds}: {suites} against "
                    f"{', '.join(d.get('teams') or [])}, {d.get('concurrency')} at a time")
        case "bench_item":
            verdict = ("error: " + str(d.get("error"))) if d.get("status") != "ok" else (
                "right" if d.get("correct") else "wrong" if "correct" in d else "answered")
            return f"{d.get('team')} {d.get('suite')}/{d.get('item')} {verdict}"
        case "bench_team_failed":
            return f"run {d.get('run')}: {d.get('team')} failed: {d.get('reason')}"
        case "bench_paused" | "bench_resumed" | "bench_cancelled":
            return f"run {d.get('run')}{reason}"
        case "bench_finished":
            return f"run {d.get('run')} finished" + ("" if d.get("public") else " (sealed)")
        case "show_configured":
            return "show file recorded"
        case _:
            return ", ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, dict | list))


def matches(event: Json, words: list[str]) -> bool:
    """The log's filter: every word must match. ``type:``, ``team:`` and ``actor:`` match
    those fields (by prefix for a type); a bare word matches anywhere in the line."""
    for word in words:
        key, _, value = word.partition(":")
        if value and key == "type":
            if not str(event.get("type", "")).startswith(value):
                return False
        elif value and key == "team":
            if event_team(event) != value:
                return False
        elif value and key == "actor":
            if value not in str(event.get("actor", "")):
                return False
        else:
            line = f"{event.get('type')} {event.get('actor')} {describe(event)}".lower()
            if word.lower() not in line:
                return False
    return True
