"""The command line as a user runs it: demo, export, import."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from showcase.cli import main
from tests.conftest import OPERATOR, Server, score_sample_round


@contextlib.contextmanager
def demo_running(tmp_path: Path) -> Iterator[str]:
    """``showcase demo`` as a user starts it; yields what it printed until it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOWCASE_")}
    proc = subprocess.Popen([sys.executable, "-m", "showcase", "demo", "--port", "0",
                             "--data", str(tmp_path / "demo")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "serving" in line or not line:
                break
        yield "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_the_demos_printed_walkthrough_runs_in_its_order(tmp_path: Path) -> None:
    with demo_running(tmp_path) as out:
        url = re.search(r"serving .* on (http://\S+)", out).group(1)  # type: ignore[union-attr]
        for page in ("/overlays/scoreboard.html", "/remote#token=", "/verify"):
            assert f"{url}{page}" in out
        walkthrough = out.split("  walkthrough:")[1].split("\n\n")[0]
        script = "\n".join(walkthrough.splitlines()[1:])
        # As printed, in bash: every answer is kept, to show that none was a refusal.
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stderr
        assert '{"error":' not in done.stdout, done.stdout  # a refusal's answer
        token = re.search(r"operator\s+(\S+)", out).group(1)  # type: ignore[union-attr]
        public = httpx.get(f"{url}/api/state").json()["state"]
        applied = httpx.get(f"{url}/api/log", params={"type": "score_entered"},
                            headers={"Authorization": f"Bearer {token}"}).json()
        rows = {r["team"]: r for r in public["rounds"][0]["standings"]["rows"]}
        assert public["rounds"][0]["phase"] == "published"
        assert rows["naver"]["status"] == "disqualified"
        assert any("benchmark run" in (e["data"].get("reason") or "")
                   for e in applied["events"])


def test_demo_runs_the_sample_show_and_prints_urls_and_tokens(tmp_path: Path) -> None:
    with demo_running(tmp_path) as out:
        url = re.search(r"serving .* on (http://\S+)", out).group(1)  # type: ignore[union-attr]
        token = re.search(r"operator\s+(\S+)", out).group(1)  # type: ignore[union-attr]
        for page in ("/api/state", "/events", "/healthz", "/metrics"):
            assert f"{url}{page}" in out
        assert "presenter" in out and "judge" in out and "publish" in out
        auth = {"Authorization": f"Bearer {token}"}
        state = httpx.get(f"{url}/api/state", headers=auth).json()["state"]
        standings = state["rounds"][0]["standings"]
        assert standings["complete"] and standings["rows"][0]["team"] == "lg"
        published = httpx.post(f"{url}/api/rounds/r1/publish", headers=auth)
        assert published.status_code == 201
        public = httpx.get(f"{url}/api/state").json()["state"]
        assert public["rounds"][0]["standings"]["rows"][-1]["status"] == "eliminated"
        # The teams are simulated: a live demo gets an answer from each team still in the
        # show (ncai was just eliminated).
        assert "/api/demo" in out
        started = httpx.post(f"{url}/api/demo", headers=auth,
                             json={"prompt": "Introduce yourself.", "max_tokens": 20})
        assert started.status_code == 201, started.text
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            demo = httpx.get(f"{url}/api/demo").json()["demo"]
            if demo["phase"] == "finished":
                break
            time.sleep(0.1)
        assert {t: r["status"] for t, r in demo["results"].items()} == {
            t: "ok" for t in ("lg", "skt", "upstage", "naver")}
        assert all(r["metrics"]["output_tokens"] == 20 for r in demo["results"].values())


def test_export_then_import_rebuilds_the_identical_show(
        server: Server, tmp_path: Path, showfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    score_sample_round(server)
    server.post("/api/teams/naver/disqualify", {"reason": "weights"}).raise_for_status()
    server.post("/api/rounds/r1/publish").raise_for_status()
    before = server.state(OPERATOR)
    out = tmp_path / "export"
    # export works while the server runs
    assert main(["export", "--data", str(server.data), "--out", str(out)]) == 0
    lines = (out / "events.ndjson").read_bytes().splitlines()
    assert len(lines) == before["seq"]
    # A byte-order mark first, so that Excel reads the Korean names as UTF-8.
    assert (out / "standings.csv").read_bytes().startswith(b"\xef\xbb\xbfround,")
    rows = list(csv.DictReader((out / "standings.csv").open(encoding="utf-8-sig")))
    assert [(r["team"], r["status"], r["total"]) for r in rows][:2] == [
        ("lg", "active", "80.65"), ("skt", "active", "73.85")]
    assert rows[-1]["team"] == "naver" and rows[-1]["status"] == "disqualified"
    standings = orjson.loads((out / "standings.json").read_bytes())
    assert standings["rounds"][0]["published"]["rows"][0]["total"] == 80.65

    fresh = tmp_path / "rehearsal-copy"
    assert main(["import", str(out / "events.ndjson"), "--data", str(fresh)]) == 0
    copy = Server(showfile, fresh).start()
    try:
        assert copy.state(OPERATOR) == before
    finally:
        copy.stop()
    # a second import into the same directory would mix two shows: refused
    assert main(["import", str(out / "events.ndjson"), "--data", str(fresh)]) == 2
    assert "already has a log" in capsys.readouterr().err


def test_import_of_a_broken_log_names_the_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "events.ndjson"
    bad.write_text('{"seq": 1, "ts": 1, "type": "round_started", "actor": "x", "data": {}}\n'
                   "not json\n")
    assert main(["import", str(bad), "--data", str(tmp_path / "d")]) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    bad.write_text('{"seq": 1, "ts": 1, "type": "round_started", "actor": "x", "data": {}}\n')
    assert main(["import", str(bad), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: seq 1: round_started is recorded by operator, not by 'x'" in err
    bad.write_text('{"seq": 1, "ts": 1, "type": "party", "actor": "x", "data": {}}\n')
    assert main(["import", str(bad), "--data", str(tmp_path / "d")]) == 2
    assert "unknown event type 'party'" in capsys.readouterr().err
    assert not (tmp_path / "d" / "events.sqlite3").exists()


def test_export_of_a_directory_without_a_log_says_so(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--data", str(tmp_path)]) == 2
    assert "has no event log" in capsys.readouterr().err


def test_two_servers_cannot_share_one_data_directory(server: Server, showfile: Path) -> None:
    second = Server(showfile, server.data)
    with pytest.raises(RuntimeError, match="in use by another showcase server"):
        second.start()


def test_changed_show_file_is_recorded_and_a_removed_team_is_refused(
        server: Server, tmp_path: Path, showfile: Path) -> None:
    server.post("/api/scores", {"criterion": "benchmark", "team": "ncai", "value": 50})
    server.stop()
    text = showfile.read_text(encoding="utf-8")
    recoloured = tmp_path / "recoloured.toml"
    recoloured.write_text(text.replace('colour = "#1f6feb"', 'colour = "#123456"'),
                          encoding="utf-8")
    again = Server(recoloured, server.data).start()
    try:
        state = again.state(OPERATOR)
        assert state["seq"] == 3  # show, score, and the changed show file
        assert state["state"]["teams"][4]["colour"] == "#123456"
        assert state["state"]["rounds"][0]["values"]["benchmark"] == {"ncai": 50}
    finally:
        again.stop()
    without = tmp_path / "without-ncai.toml"
    without.write_text(text[: text.index('[[teams]]\nid = "ncai"')]
                       + text[text.index("# 100 points in all"):], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "showcase", "serve", str(without), "--port", "0",
         "--data", str(server.data)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{without}: team 'ncai': is in this data directory's log" in result.stderr


def test_importing_the_server_does_not_load_the_console_toolkit() -> None:
    code = ("import sys, showcase, showcase.server.app, showcase.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'redis')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == "[]"


def test_bench_takes_suite_ids_as_the_api_and_console_do() -> None:
    from showcase.bench.suites import sample_suites_dir
    from tests.test_proxy import Mock

    mock = Mock("--ttft-ms", "5", "--itl-ms", "1", "--accuracy", "1",
                "--answers", str(sample_suites_dir()))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "showcase", "bench", "ko-math", "--team", "lg",
             "--url", f"{mock.url}/v1"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "ko-math" in done.stdout and "ko-reading" not in done.stdout
        assert "100.0%" in done.stdout
    finally:
        mock.stop()
    unknown = subprocess.run(
        [sys.executable, "-m", "showcase", "bench", "ko-maths", "--team", "lg",
         "--url", "http://127.0.0.1:9/v1"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2
    assert "'ko-maths' is neither a suite file or folder nor a suite id" in unknown.stderr
    assert "ko-math, ko-reading" in unknown.stderr


def warned_show(folder: Path, endpoint: str, points: int = 105, rounds: str = "") -> Path:
    path = folder / "show.toml"
    path.write_text(
        '[show]\ntitle_en = "Warned"\n'
        f'[[teams]]\nid = "lg"\nname_ko = "LG"\nname_en = "LG"\nendpoint = "{endpoint}"\n'
        'api_key_env = "SHOWCASE_KEY_NEVER_SET"\n'
        f'[[criteria]]\nid = "benchmark"\nname_ko = "b"\nname_en = "b"\npoints = {points}\n'
        + rounds, encoding="utf-8")
    return path


def test_serve_warns_before_the_show_and_prints_every_page(tmp_path: Path) -> None:
    from tests.conftest import PRESENTER
    from tests.test_proxy import free_port

    port = free_port()  # nothing listens there
    srv = Server(warned_show(tmp_path, f"http://127.0.0.1:{port}/v1"), tmp_path / "data")
    srv.start()
    try:
        out = "".join(srv.output)
    finally:
        srv.stop()
    for warning in (
            "WARNING: the criteria add up to 105 points (benchmark 105), not the 100 a round "
            "is out of",
            "WARNING: the show file has no [[rounds]]: one round (r1) is assumed",
            "WARNING: team lg: its key variable SHOWCASE_KEY_NEVER_SET is not set",
            f"WARNING: team lg: http://127.0.0.1:{port}/v1 cannot be reached"):
        assert warning in out
    for page in ("/overlays/scoreboard.html", "/overlays/reveal.html", "/overlays/demo.html",
                 "/overlays/bench.html", "/overlays/ticker.html", "/remote", "/verify"):
        assert f"{srv.url}{page}" in out
    # The presenter's phone: the remote's address with its token, and its QR code.
    assert f"{srv.url}/remote#token={PRESENTER}" in out
    assert "██ ▄▄▄▄▄ █" in out  # a finder pattern's top edge


def test_serve_strict_refuses_to_start_on_a_warning_and_leaves_the_data_alone(
        tmp_path: Path) -> None:
    from tests.test_proxy import Mock, free_port

    show = warned_show(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    refused = subprocess.run(
        [sys.executable, "-m", "showcase", "serve", str(show), "--strict", "--port", "0",
         "--data", str(tmp_path / "data")], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert "showcase: refusing to start (--strict): 4 warnings above" in refused.stderr
    assert "WARNING: the criteria add up to 105 points" in refused.stdout
    assert not (tmp_path / "data").exists()
    # A show with nothing to warn about starts under --strict.
    mock = Mock()
    try:
        good = warned_show(tmp_path, f"{mock.url}/v1", points=100,
                           rounds='[[rounds]]\nid = "r1"\nname_ko = "1"\nname_en = "One"\n')
        srv = Server(good, tmp_path / "data", args=["--strict"],
                     env={"SHOWCASE_KEY_NEVER_SET": "key"}).start()
        srv.stop()
        assert "WARNING" not in "".join(srv.output)
    finally:
        mock.stop()
