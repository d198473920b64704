"""After the round: the operator publishes the full log of a published round, and anyone
checks it with ``showcase verify``; before that, a recording of the public stream commits to
every sealed event (its leaf hash) without showing any of it (issue 16, items 3 and 6)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest

from showcase.cli import main
from showcase.core import events as ev
from showcase.core.disclosure import still_sealed
from showcase.core.merkle import canonical_line
from showcase.core.state import PUBLISHED, RoundState, State
from tests.conftest import OPERATOR, PRESENTER, Server, score_sample_round
from tests.streams import Viewer
from tests.test_secrecy import whole_show_log


def leaf_of(line: bytes) -> str:
    """RFC 6962's leaf hash, computed here from the line, as any outsider would."""
    return base64.b64encode(hashlib.sha256(b"\x00" + line).digest()).decode()


def test_a_public_recording_of_a_whole_reveal_holds_the_leaves_of_sealed_events_and_nothing_else(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    viewer = Viewer(server.url)
    try:
        log, _ = whole_show_log(server)
        recording = viewer.wait_seq(log[-1]["seq"])
    finally:
        viewer.close()
    sealed = {m["seq"]: m for m in recording if m.get("type") == "sealed"}
    assert len(sealed) >= 35  # every judge's score at least
    for message in sealed.values():
        assert set(message) == {"seq", "ts", "type", "data"}
        assert set(message["data"]) == {"leaf"}

    # The round is published by the reveal; the operator now publishes its log.
    before = server.state(OPERATOR)["seq"]
    published = server.post("/api/rounds/r1/publish-log")
    assert published.status_code == 201, published.text
    assert published.json()["seq"] == before + 1
    size = server.state(None)["state"]["rounds"][0]["log"]
    assert size == next(e["seq"] for e in log if e["type"] == ev.REVEAL_STEP
                        and "publication" in e["data"])

    download = httpx.get(f"{server.url}/api/log/rounds/r1/events.ndjson")
    assert download.status_code == 200
    lines = download.content.split(b"\n")[:-1]
    assert len(lines) == size
    for seq, message in sealed.items():  # what the public was sent at the time
        assert message["data"]["leaf"] == leaf_of(lines[seq - 1]), seq
    # Byte for byte the export's lines: the operator's log, canonical.
    assert lines == [canonical_line(e) for e in log[:size]]

    path = tmp_path / "events.ndjson"
    path.write_bytes(download.content)
    note = tmp_path / "checkpoint.txt"
    note.write_text(httpx.get(f"{server.url}/api/log/rounds/r1/checkpoint").text)
    key = httpx.get(f"{server.url}/api/log/key").text.strip()
    assert main(["verify", str(path), "--checkpoint", str(note), "--key", key]) == 0
    report = capsys.readouterr().out
    assert f"at size {size}: signature good, root matches" in report
    public = server.state(None)["state"]["rounds"][0]["standings"]
    eliminated = [r["team"] for r in public["rows"] if r["status"] == "eliminated"]
    assert f"round r1: published; eliminated: {', '.join(eliminated)}" in report


def test_a_round_log_is_published_only_after_its_results_and_only_by_the_operator(
        server: Server) -> None:
    score_sample_round(server)
    seq = server.state(OPERATOR)["seq"]
    early = server.post("/api/rounds/r1/publish-log")
    assert early.status_code == 409
    assert "round 'r1' is not published" in early.json()["error"]
    missing = httpx.get(f"{server.url}/api/log/rounds/r1/events.ndjson")
    assert missing.status_code == 404
    assert "not published" in missing.json()["error"]
    assert server.post("/api/rounds/r9/publish-log").status_code == 404
    assert server.state(OPERATOR)["seq"] == seq  # nothing recorded

    server.post("/api/rounds/r1/publish").raise_for_status()
    refused = server.post("/api/rounds/r1/publish-log", token=PRESENTER)
    assert refused.status_code == 403
    assert server.post("/api/rounds/r1/publish-log").status_code == 201
    again = server.post("/api/rounds/r1/publish-log")
    assert again.status_code == 409
    assert "published already" in again.json()["error"]


def event(seq: int, kind: str, actor: str = "operator:desk", **data: object) -> ev.Event:
    return ev.Event(seq, 0.0, kind, actor, dict(data))


def test_nothing_still_sealed_leaves_with_a_published_log() -> None:
    state = State()
    state.rounds["r1"] = RoundState("r1", phase=PUBLISHED)
    state.rounds["r2"] = RoundState("r2")
    score = event(1, ev.SCORE_ENTERED, round="r1", team="lg", criterion="expert", value=9)
    health = event(2, ev.TEAM_HEALTH, actor="server:health", team="lg", ok=False,
                   error="connect to 10.0.0.7:8000 refused")
    assert still_sealed([score, health], state) is None
    # A benchmark run that feeds the next round: its items are still sealed.
    run = event(3, ev.BENCH_STARTED, round="r2", suites=[], teams=["lg"])
    item = event(4, ev.BENCH_ITEM, actor="server:bench", run=3, team="lg", suite="s",
                 item=1, status="ok", error=None, correct=True, public=False)
    assert still_sealed([score, run, item], state) == (
        4, "bench_item belongs to round 'r2', whose results are not published")
    # A later round's score, and a sealed kind that names no round, both stay in.
    assert still_sealed([event(5, ev.SCORE_ENTERED, round="r2")], state) == (
        5, "score_entered belongs to round 'r2', whose results are not published")
    assert still_sealed([event(6, ev.REVEAL_ARMED, step=3)], state) == (
        6, "reveal_armed is sealed and belongs to no published round")
