"""Every judge signs their own sheet: each has a token of their own, enters and corrects
only their own sheets, and the log says which judge did it. One token for every judge
works only where the show file allows it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from showcase.core.showfile import sample_show_path
from tests.conftest import JUDGE_TOKENS, JUDGES, OPERATOR, Server

SHEET = {"criterion": "expert", "team": "lg", "value": 88}
SHARED = "one-token-for-every-judge"


def log_of(srv: Server) -> list[dict[str, object]]:
    with srv.client(OPERATOR) as op:
        return op.get("/api/log").json()["events"]  # type: ignore[no-any-return]


def test_judge_enters_and_corrects_only_their_own_sheet(server: Server) -> None:
    kim = JUDGE_TOKENS["kim"]
    entered = server.post("/api/scores", {**SHEET, "judge": "kim"}, token=kim)
    assert entered.status_code == 201, entered.text
    corrected = server.post("/api/scores", {**SHEET, "judge": "kim", "value": 90,
                                            "reason": "added wrong"}, token=kim)
    assert corrected.status_code == 201, corrected.text
    seq = server.state()["seq"]

    refused = server.post("/api/scores", {**SHEET, "judge": "lee"}, token=kim)
    assert refused.status_code == 403
    assert refused.json()["error"] == ("judge 'kim' may enter only their own sheets, "
                                       "not judge 'lee''s")
    assert server.state()["seq"] == seq  # the log is untouched

    scores = [e for e in log_of(server) if e["type"] == "score_entered"]
    assert [(e["actor"], e["data"]["judge"], e["data"]["value"]) for e in scores] == [
        ("judge:kim", "kim", 88), ("judge:kim", "kim", 90)]
    (r1,) = [r for r in server.state()["state"]["rounds"] if r["id"] == "r1"]
    assert r1["sheets"]["expert"]["lg"] == {"kim": 90}


def test_judge_token_cannot_claim_another_name(server: Server) -> None:
    with server.client(JUDGE_TOKENS["lee"]) as lee:
        answer = lee.post("/api/scores", json={**SHEET, "judge": "lee"},
                          headers={"X-Showcase-User": "kim"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "this token is judge 'lee''s, not 'kim''s"
    assert server.state()["seq"] == 1


def test_each_judge_token_is_generated_kept_and_printed(tmp_path: Path,
                                                        showfile: Path) -> None:
    no_judge_tokens = {f"SHOWCASE_JUDGE_TOKEN_{j.upper()}": "" for j in JUDGES}
    srv = Server(showfile, tmp_path / "data", env=no_judge_tokens).start()
    try:
        kept_file = tmp_path / "data" / "tokens.json"
        kept = json.loads(kept_file.read_text())
        assert stat.S_IMODE(kept_file.stat().st_mode) == 0o600
        printed = "".join(srv.output)
        for judge in JUDGES:
            token = kept[f"judge:{judge}"]
            assert f"judge {judge} token: {token}" in printed
        assert "judge" not in kept  # no token for every judge: the show does not allow one
        assert srv.post("/api/scores", {**SHEET, "judge": "park"},
                        token=kept["judge:park"]).status_code == 201
        srv.restart()
        assert srv.post("/api/scores", {**SHEET, "judge": "park", "value": 80, "reason": "r"},
                        token=kept["judge:park"]).status_code == 201
        assert json.loads(kept_file.read_text()) == kept
    finally:
        srv.stop()


def show_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(extra + "\n" + sample_show_path().read_text(encoding="utf-8")
                    + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    return path


def test_a_shared_judge_token_is_refused_unless_the_show_allows_it(tmp_path: Path) -> None:
    show = show_with(tmp_path, "")
    srv = Server(show, tmp_path / "data", env={"SHOWCASE_JUDGE_TOKEN": SHARED})
    try:
        srv.start()
        raise AssertionError("the server started with a shared judge token it may not take")
    except RuntimeError as exc:
        assert "tokens.shared_judge: SHOWCASE_JUDGE_TOKEN is set" in str(exc)
    finally:
        srv.stop()


def test_a_shared_judge_token_enters_any_sheet_where_the_show_allows_it(
        tmp_path: Path) -> None:
    show = show_with(tmp_path, "[tokens]\nshared_judge = true\n")
    srv = Server(show, tmp_path / "data", env={"SHOWCASE_JUDGE_TOKEN": SHARED}).start()
    try:
        for judge in ("kim", "lee"):
            assert srv.post("/api/scores", {**SHEET, "judge": judge},
                            token=SHARED).status_code == 201
        # Kim's own token still enters only Kim's sheets.
        assert srv.post("/api/scores", {**SHEET, "team": "skt", "judge": "lee"},
                        token=JUDGE_TOKENS["kim"]).status_code == 403
        actors = [e["actor"] for e in log_of(srv) if e["type"] == "score_entered"]
        assert actors == ["judge", "judge"]
    finally:
        srv.stop()


def test_a_judge_token_from_the_show_file_is_that_judges(tmp_path: Path) -> None:
    text = sample_show_path().read_text(encoding="utf-8").replace(
        'id = "lee"\n', 'id = "lee"\ntoken = "lee-from-the-show-file"\n')
    show = tmp_path / "show.toml"
    show.write_text(text + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    srv = Server(show, tmp_path / "data", env={"SHOWCASE_JUDGE_TOKEN_LEE": ""}).start()
    try:
        with httpx.Client(base_url=srv.url) as client:
            answer = client.post("/api/scores", json={**SHEET, "judge": "lee"},
                                 headers={"Authorization": "Bearer lee-from-the-show-file"})
        assert answer.status_code == 201
        assert log_of(srv)[-1]["actor"] == "judge:lee"
    finally:
        srv.stop()
