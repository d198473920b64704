"""The server's side of verifiable results: the signing key at rest, the tree over committed
events, and when checkpoints are signed."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from showcase.cli import main
from showcase.core import checkpoint as cp
from showcase.core import events as ev
from showcase.core.errors import LogError
from showcase.core.merkle import (
    MerkleTree,
    canonical_line,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from showcase.runtime.transparency import Transparency, load_or_create_key, origin_of
from tests.conftest import Server, score_sample_round
from tests.streams import Viewer

if TYPE_CHECKING:  # the browser stack loads only for the page's test
    from playwright.sync_api import Browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def event(seq: int, event_type: str = ev.SCORE_ENTERED, **data: object) -> ev.Event:
    return ev.Event(seq, 1000.0 + seq, event_type, "operator", dict(data))


def test_transparency_key_is_made_once_private_and_refused_when_readable(tmp_path: Path
                                                                          ) -> None:
    data = tmp_path / "data"
    key = load_or_create_key(data)
    path = data / "log.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    again = load_or_create_key(data)
    assert str(cp.verifier("o", again)) == str(cp.verifier("o", key))  # the same key
    os.chmod(path, 0o644)
    with pytest.raises(LogError, match="can be read by others"):
        load_or_create_key(data)
    os.chmod(path, 0o600)
    path.write_bytes(b"not a key")
    with pytest.raises(LogError, match="not a PEM private key"):
        load_or_create_key(data)


def test_transparency_tree_is_the_exports_and_signs_at_publication(tmp_path: Path) -> None:
    log = Transparency(load_or_create_key(tmp_path), origin_of("Sovereign AI — Round 1"),
                       interval=10)
    assert log.origin == "showcase/sovereign-ai-round-1"
    events = [event(1, ev.ROUND_STARTED, round="r1"), event(2, value=7),
              event(3, ev.ROUND_PUBLISHED, round="r1")]
    log.append(events[0])
    log.append(events[1])
    assert not log.due(events[1], now=1005)  # nothing announced, within the interval
    assert log.due(events[1], now=1011)      # unsigned events older than the interval
    log.append(events[2])
    assert log.due(events[2], now=1003)      # results announced: sign at once
    note = log.sign(now=1003)
    signed = cp.verify(note, cp.parse_verifier(str(log.verifier)))
    lines = [canonical_line(e.to_json()) for e in events]
    assert signed.size == 3 and signed.time == 1003
    assert signed.root == MerkleTree(leaf_hash(x) for x in lines).root()
    assert not log.due(None, now=2000)       # nothing new since: nothing to sign
    assert log.message() == {"seq": None, "type": "checkpoint",
                             "data": {"size": 3, "note": note}}
    with pytest.raises(LogError, match="seq 5 cannot follow"):
        log.append(event(5))


# -- over HTTP, on a real server ------------------------------------------------------------

def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_a_published_round_is_signed_and_verifies_from_outside(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stat.S_IMODE((server.data / "log.key").stat().st_mode) == 0o600
    viewer = Viewer(server.url)
    try:
        score_sample_round(server)
        published = server.post("/api/rounds/r1/publish").json()["seq"]
        seen = viewer.wait_for(lambda ms: any(
            m.get("type") == "checkpoint" and m["data"]["size"] >= published for m in ms))
    finally:
        viewer.close()
    note = httpx.get(f"{server.url}/api/log/checkpoint").text
    key = httpx.get(f"{server.url}/api/log/key").text.strip()
    signed = cp.verify(note, cp.parse_verifier(key))  # signed at the publication itself
    assert signed.size == published
    assert note in [m["data"]["note"] for m in seen if m.get("type") == "checkpoint"]
    out = tmp_path / "export"
    assert main(["export", "--data", str(server.data), "--out", str(out)]) == 0
    (tmp_path / "checkpoint.txt").write_text(note, encoding="utf-8")
    assert main(["verify", str(out / "events.ndjson"), "--checkpoint",
                 str(tmp_path / "checkpoint.txt"), "--key", key]) == 0
    assert f"at size {published}: signature good, root matches" in capsys.readouterr().out


def test_proofs_show_public_events_and_only_the_hash_of_sealed_ones(server: Server) -> None:
    score_sample_round(server)
    score = server.post("/api/scores", {"criterion": "benchmark", "team": "lg", "value": 77.25,
                                        "reason": "re-run"}).json()["seq"]
    sealed = server.post("/api/teams/naver/withdraw", {"reason": "asked to leave"}).json()["seq"]
    size = server.post("/api/rounds/r1/publish").json()["seq"]
    for seq in (score, sealed, size):
        answer = httpx.get(f"{server.url}/api/log/proof",
                           params={"seq": seq, "size": size}).json()
        assert answer["size"] == size and len(answer["proof"]) <= size.bit_length()
        verify_inclusion(seq - 1, size, b64(answer["leaf_hash"]),
                         [b64(h) for h in answer["proof"]], b64(answer["root"]))
        if seq == size:  # the publication: public as the log holds it
            assert leaf_hash(answer["line"].encode()) == b64(answer["leaf_hash"])
        else:  # a correction and a withdrawal the public was never told: provably in the
            # log, and still sealed
            assert "line" not in answer
            assert "asked to leave" not in str(answer) and "77.25" not in str(answer)
    later = httpx.get(f"{server.url}/api/log/consistency",
                      params={"from": 2, "to": size}).json()
    verify_consistency(2, size, [b64(h) for h in later["proof"]], b64(later["from_root"]),
                       b64(later["to_root"]))
    for bad, words in (({"seq": "x"}, "whole number"), ({"seq": size + 50}, "not in the"),
                       ({}, "give ?seq=N")):
        refused = httpx.get(f"{server.url}/api/log/proof", params=bad)
        assert refused.status_code == 400 and words in refused.json()["error"], refused.text
    refused = httpx.get(f"{server.url}/api/log/consistency", params={"from": size + 9})
    assert refused.status_code == 400 and "prefix" in refused.json()["error"]


def test_the_verify_page_shows_the_signed_checkpoint_in_both_languages(
        server: Server, browser: Browser) -> None:
    from playwright.sync_api import expect

    score_sample_round(server)
    size = server.post("/api/rounds/r1/publish").json()["seq"]
    note = httpx.get(f"{server.url}/api/log/checkpoint").text
    key = httpx.get(f"{server.url}/api/log/key").text.strip()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/verify?lang=en")
        page.wait_for_function("document.getElementById('state').textContent !== ''")
        assert page.inner_text("#logs") == "No round's log is published yet."
        server.post("/api/rounds/r1/publish-log").raise_for_status()
        for lang, says, listed in (
                ("en", f"The first {size} entries of the log are signed.",
                 f"First evaluation: events.ndjson ({size} entries) · checkpoint"),
                ("ko", f"로그의 처음 {size}개 기록이 서명되어 있습니다.",
                 f"1차 평가: events.ndjson ({size}개 기록) · 체크포인트")):
            page.goto(f"{server.url}/verify?lang={lang}")
            page.wait_for_function("document.getElementById('state').textContent !== ''")
            assert page.inner_text("#state") == says
            assert page.inner_text("#checkpoint").strip() == note.strip()
            assert page.inner_text("#key").strip() == key
            hexed = base64.b64decode(note.split("\n")[2])[:6].hex().upper()  # as on air
            assert page.inner_text("#fingerprint") == f"{hexed[:4]} {hexed[4:8]} {hexed[8:]}"
            expect(page.locator("#logs")).to_have_text(listed)
            commands = page.inner_text("#commands")
            assert f"{server.url}/api/log/rounds/r1/events.ndjson > events.ndjson" in commands
            assert f"{server.url}/api/log/rounds/r1/checkpoint > checkpoint.txt" in commands
            page.screenshot(path=str(ARTIFACTS / f"verify-{lang}.png"), full_page=True)
        # The link is the download the commands fetch.
        with page.expect_download() as fetched:
            page.click("#logs a >> nth=0")
        assert Path(fetched.value.path()).read_bytes().count(b"\n") == size
    finally:
        context.close()
