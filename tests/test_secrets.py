"""Secrets at rest and in logs (issue 15, finding 6), with a real ``showcase serve``: the
data directory is its owner's only, a token the operator set is never printed, no token
appears in any answer, and a trailing slash gets JSON, not a bare redirect."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import orjson

from showcase.cli import main
from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_its_files_are_the_owners_only(
        tmp_path: Path, showfile: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older version or a careless mkdir left it
    old_log = data / "events.sqlite3"
    srv = Server(showfile, data).start()
    try:
        srv.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 50}
                 ).raise_for_status()
        files = {p.name: mode(p) for p in data.iterdir() if p.name != "lock"}
    finally:
        srv.stop()
    assert mode(data) == 0o700
    assert {"events.sqlite3", "events.sqlite3-wal", "events.sqlite3-shm", "log.key"} <= set(files)
    assert all(m == 0o600 for m in files.values()), files
    # A log left readable by others is tightened on the next start.
    old_log.chmod(0o644)
    data.chmod(0o755)
    srv = Server(showfile, data).start()
    srv.stop()
    assert mode(old_log) == 0o600 and mode(data) == 0o700
    assert "could be read by others" in "".join(srv.output)


def test_tokens_from_the_environment_are_not_printed(tmp_path: Path, showfile: Path) -> None:
    srv = Server(showfile, tmp_path / "data").start()
    srv.stop()
    output = "".join(srv.output)
    for token in (OPERATOR, PRESENTER, JUDGE):
        assert token not in output
    assert "operator token:  from $SHOWCASE_OPERATOR_TOKEN (not printed)" in output
    assert "judge kim token: from $SHOWCASE_JUDGE_TOKEN_KIM (not printed)" in output


def test_a_generated_token_is_printed_once_made_and_kept(tmp_path: Path, showfile: Path) -> None:
    data = tmp_path / "data"
    srv = Server(showfile, data, env={"SHOWCASE_PRESENTER_TOKEN": ""}).start()
    srv.stop()
    generated = orjson.loads((data / "tokens.json").read_bytes())["presenter"]
    output = "".join(srv.output)
    assert f"presenter token: {generated}  (generated; kept in {data / 'tokens.json'})" in output
    assert OPERATOR not in output


def test_no_token_in_any_answer_export_or_log_line(server: Server, tmp_path: Path) -> None:
    tokens = (OPERATOR, PRESENTER, JUDGE)
    seen: list[str] = []
    with server.client(OPERATOR) as op:
        op.post("/api/scores", json={"criterion": "benchmark", "team": "lg", "value": 50})
        for path in ("/api/state", "/api/log", "/metrics", "/healthz", "/api/log/key",
                     "/openapi.json", "/api/demo", "/api/bench"):
            seen.append(op.get(path).text)
    for token in tokens:  # a token sent where it does not belong, or mangled
        for headers in ({"Authorization": f"Bearer {token}x"},
                        {"Authorization": f"Basic {token}"},
                        {"Authorization": f"Bearer {JUDGE}", "X-Showcase-User": token + "!"}):
            seen.append(httpx.post(f"{server.url}/api/rounds/r1/publish", headers=headers,
                                   json={}).text)
        seen.append(httpx.get(f"{server.url}/events", params={"token": token + "x"}).text)
    out = tmp_path / "export"
    assert main(["export", "--data", str(server.data), "--out", str(out)]) == 0
    seen += [f.read_text(encoding="utf-8") for f in out.iterdir()]
    server.stop()
    seen.append("".join(server.output))
    everything = "\n".join(seen)
    for token in tokens:
        assert token not in everything


def test_a_trailing_slash_is_answered_in_json_never_redirected(server: Server) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False,
                      headers={"Authorization": f"Bearer {OPERATOR}"}) as c:
        seq = c.get("/healthz").json()["seq"]
        for method, path in (("POST", "/api/scores/"), ("POST", "/api/teams/lg/disqualify/"),
                             ("GET", "/api/state/"), ("POST", "/api/demo/")):
            response = c.request(method, path, json={"criterion": "benchmark", "team": "lg",
                                                     "value": 50, "reason": "x"})
            assert response.status_code == 404, (path, response.status_code)
            assert response.json()["error"] == f"no such endpoint: {method} {path}"
        assert c.get("/healthz").json()["seq"] == seq
