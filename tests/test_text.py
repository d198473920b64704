"""Text that should never air is refused before it is recorded (issue 15, finding 3): every
rule of core/text.py and the duplicate-key rule, over HTTP to a real server; each refusal
names the field and the rule, and the log stays as it was."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest

from showcase.core.text import is_invisible
from tests.conftest import OPERATOR, Server

KAKAO = {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao"}

# (path, body, the words of the refusal)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("/api/teams", {**KAKAO, "name_en": "K" * 10_000},
     "field 'name_en' is too long (10000 characters, at most 64)"),
    ("/api/teams", {**KAKAO, "name_ko": "\u202e\u200b"},
     "field 'name_ko' holds a bidirectional control (U+202E) at character 1"),
    ("/api/teams", {**KAKAO, "name_ko": "\u3164\u3164"},  # Hangul fillers: draw nothing
     "field 'name_ko' has only invisible characters"),
    ("/api/teams", {**KAKAO, "name_en": "\u200d\u0301"},  # a joiner and an accent on nothing
     "field 'name_en' has only invisible characters"),
    ("/api/teams", {**KAKAO, "name_en": "Ka\u200bkao"},
     "field 'name_en' holds a zero-width character (U+200B) at character 3"),
    ("/api/teams", {**KAKAO, "name_en": "Kakao\n"},
     "field 'name_en' holds a control character (U+000A)"),
    ("/api/teams", {**KAKAO, "org": "Kakao\u2066Corp"},
     "field 'org' holds a bidirectional control (U+2066)"),
    ("/api/teams", {**KAKAO, "reason": "\u200f" + "replacement"},
     "field 'reason' holds a bidirectional mark (U+200F)"),
    ("/api/teams/lg/disqualify", {"reason": "\u200b\u200b\u200b"},
     "field 'reason' holds a zero-width character (U+200B) at character 1"),
    ("/api/teams/lg/disqualify", {"reason": "\u2060\ufeff"},
     "field 'reason' holds a zero-width character (U+2060)"),
    ("/api/teams/lg/disqualify", {"reason": "weights\x00match"},
     "field 'reason' holds a control character (U+0000) at character 8"),
    ("/api/teams/lg/disqualify", {"reason": "copied \u202eledoM"},
     "field 'reason' holds a bidirectional control (U+202E) at character 8"),
    ("/api/teams/lg/withdraw", {"reason": "r" * 501},
     "field 'reason' is too long (501 characters, at most 500)"),
    ("/api/reveal/lock", {"locked": True, "reason": "\x1b[31mstop"},
     "field 'reason' holds a control character (U+001B)"),
    ("/api/teams/lg/disqualify", {"reason": "\u00a0\u2003"},  # no-break and em spaces
     "needs a reason"),
    ("/api/demo", {"prompt": "p" * 8001},
     "field 'prompt' is too long (8001 characters, at most 8000)"),
    ("/api/demo", {"prompt": "hello\x07"},
     "field 'prompt' holds a control character (U+0007) at character 6"),
    ("/api/demo", {"prompt": "hi", "system": "\u2067rtl"},
     "field 'system' holds a bidirectional control (U+2067)"),
    ("/api/bench/cancel", {"reason": "\u2800"},  # the blank Braille pattern
     "field 'reason' has only invisible characters"),
    ("/api/bench/import", {"team": "lg", "results": {}, "tasks": {"kmmlu": {
        "category": "comprehension", "baseline": 0.25, "language": "\u202eko"}}},
     "field 'language' holds a bidirectional control (U+202E)"),
]


def log_seq(srv: Server) -> int:
    with srv.client() as c:
        return int(c.get("/healthz").json()["seq"])


def test_text_that_should_never_air_is_refused_by_field_and_rule(server: Server) -> None:
    seq = log_seq(server)
    for path, body, words in REFUSED:
        response = server.post(path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert words in response.json()["error"], (path, response.json())
    assert log_seq(server) == seq


def test_a_prompt_keeps_its_line_breaks_and_a_name_is_stored_as_nfc(server: Server) -> None:
    decomposed = unicodedata.normalize("NFD", "카카오")  # as some keyboards send it
    assert decomposed != "카카오"
    response = server.post("/api/teams", {**KAKAO, "name_ko": decomposed, "name_en": "K" * 64,
                                          "org": "Kakao \u200dCorp"})  # ZWJ is kept
    assert response.status_code == 201, response.text
    team = next(t for t in server.state(None)["state"]["teams"] if t["id"] == "kakao")
    assert team["name_ko"] == "카카오" and team["name_en"] == "K" * 64
    refused = server.post("/api/demo", {"prompt": "line one\nline two\tand a tab"})
    assert "control character" not in refused.text  # a prompt may hold line breaks


@pytest.mark.parametrize("path", ["/api/scores", "/api/demo"])  # the command front; the app
def test_a_key_twice_in_a_body_is_refused(server: Server, path: str) -> None:
    seq = log_seq(server)
    bodies = {"/api/scores": b'{"criterion": "benchmark", "team": "lg", "value": 10, '
                             b'"value": 20}',
              "/api/demo": b'{"prompt": "a: b", "teams": ["lg"], "prompt": "c"}'}
    response = httpx.post(f"{server.url}{path}", content=bodies[path],
                          headers={"Authorization": f"Bearer {OPERATOR}",
                                   "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] in ("the body has the key 'value' twice",
                                        "the body has the key 'prompt' twice")
    assert log_seq(server) == seq
    # A colon inside a string is no duplicate: the body is read as it is.
    fine = httpx.post(f"{server.url}/api/scores", headers={"Authorization": f"Bearer {OPERATOR}"},
                      content=b'{"criterion": "benchmark", "team": "lg", "value": 10, '
                              b'"reason": "note: {\\"value\\": 1}"}')
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize(("value", "invisible"), [
    ("", True), (" \u3000", True), ("\u200d", True), ("a", False), ("\u200da", False),
    ("가", False), ("\U0001f600", False),
])
def test_invisible_means_nothing_a_viewer_could_read(value: str, invisible: bool) -> None:
    assert is_invisible(value) is invisible
