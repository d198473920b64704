"""The overlays in a real browser: Debian's Chromium driven by Playwright, against a real
server with a mock team. Screenshots of every page at 1920x1080 are kept in
test-artifacts/overlays/ for a person to look at."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import OPERATOR, PRESENTER, Server, score_sample_round
from tests.overlays.conftest import ARTIFACTS, show_with_lg
from tests.test_proxy import Mock

PAGES = ["scoreboard.html", "reveal.html", "demo.html", "lower-third.html?team=lg",
         "ticker.html"]


@pytest.fixture
def lg_mock() -> Iterator[Mock]:
    mock = Mock("--dialect", "vllm", "--model", "exaone", "--ttft-ms", "40", "--itl-ms", "10",
                "--tokens", "400")
    yield mock
    mock.stop()


@pytest.fixture
def showfile(tmp_path: Path, lg_mock: Mock) -> Path:
    """The sample show with lg answering from a mock team and no health checks."""
    return show_with_lg(tmp_path, lg_mock.url, "health_interval = 0")


def top_left_alpha(png: bytes) -> int:
    """The alpha of a PNG's first pixel: the first pixel of the first row is stored as is
    whatever the row's filter, so no full decoder is needed."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, colour_type = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            colour_type = chunk[9]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert colour_type == 6, "the screenshot has no alpha channel"
    return zlib.decompress(idat)[4]


def test_every_page_renders_transparent_for_obs(server: Server, page: Page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        page.goto(f"{server.url}/overlays/{name}")
        page.wait_for_timeout(400)
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == \
            "rgba(0, 0, 0, 0)", name
        png = page.screenshot(omit_background=True)
        assert top_left_alpha(png) == 0, f"{name} paints its own background"
        (ARTIFACTS / (name.split("?")[0].replace(".html", "") + ".png")).write_bytes(png)
    gallery = page.goto(f"{server.url}/")
    assert gallery is not None and gallery.ok
    for name in PAGES:
        assert page.locator(f'a[href="/overlays/{name}"]').count() == 1


def test_the_scoreboard_follows_the_show_in_korean(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/scoreboard.html?lang=ko&bg=101820")
    rows = page.locator(".board .row")
    expect(rows).to_have_count(5)
    expect(page.locator('.row[data-team="lg"] .team')).to_have_text("LG AI연구원")
    assert page.evaluate("document.fonts.check('700 28px \"Noto Sans CJK KR\"')")
    # Nothing is shown before it is announced.
    score_sample_round(server)
    page.wait_for_timeout(300)
    expect(page.locator('.row[data-team="lg"] .total')).to_have_text("–")
    assert server.post("/api/rounds/r1/publish").status_code == 201
    expect(page.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
    expect(page.locator('.row[data-team="ncai"] .badge')).to_have_text("탈락")
    expect(page.locator(".cutline")).to_have_class("cutline on")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1500)  # the rows and the cut line finish moving
    page.screenshot(path=str(ARTIFACTS / "scoreboard-published-ko.png"))


def test_a_reveal_page_opened_mid_reveal_shows_the_current_step(
        server: Server, page: Page) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    assert server.post("/api/reveal/goto", {"to": 9}, token=PRESENTER).status_code == 201
    page.goto(f"{server.url}/overlays/reveal.html")
    expect(page.locator("#card .text")).to_have_text("Upstage")
    expect(page.locator("#card .kind")).to_have_text("Points · Expert review")
    expect(page.locator("#card .figure")).to_have_text("+28.12")
    expect(page.locator('.row[data-team="upstage"] .pos')).to_have_text("1")
    # Steps after it joined arrive in lockstep; back rolls the page back.
    assert server.post("/api/reveal/goto", {"to": 17}, token=PRESENTER).status_code == 201
    assert server.post("/api/reveal/arm", {"to": 18}, token=PRESENTER).status_code == 201
    assert server.post("/api/reveal/next", {"to": 18}, token=PRESENTER).status_code == 201
    expect(page.locator("#card")).to_have_class("card panel eliminate on")
    expect(page.locator("#card .text")).to_have_text("NC AI")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "reveal-elimination.png"))
    assert server.post("/api/reveal/back", {"to": 17}, token=PRESENTER).status_code == 201
    expect(page.locator("#card .kind")).to_have_text("The cut")
    expect(page.locator('.row[data-team="ncai"]')).not_to_have_class("row eliminated")


def test_a_page_survives_a_server_restart_and_catches_up(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/scoreboard.html")
    expect(page.locator(".board .row")).to_have_count(5)
    server.restart()  # same port, same data: the page reconnects by itself
    score_sample_round(server)
    assert server.post("/api/teams/naver/disqualify",
                       {"reason": "weights", "announce": True}).status_code == 201
    expect(page.locator('.row[data-team="naver"] .badge')).to_have_text("Disqualified",
                                                                       timeout=15000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload


def test_the_demo_page_streams_and_stays_the_same_size(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overlays/demo.html?team=lg")
    started = server.post("/api/demo", {"prompt": "Tell a long story.", "teams": ["lg", "skt"],
                                        "max_tokens": 400}, token=OPERATOR)
    assert started.status_code == 201, started.text
    expect(page.locator("#prompt")).to_have_text("Tell a long story.")
    expect(page.locator('.col[data-team="lg"] .state')).to_have_text("live")
    expect(page.locator('.col[data-team="lg"] .ttft')).not_to_have_text("–")
    expect(page.locator('.col[data-team="lg"] .state')).to_have_text("done", timeout=15000)
    shown = page.locator('.col[data-team="lg"] .answer').inner_text()
    assert 0 < len(shown) <= 900  # the tail of a long answer, not all of it
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    assert nodes < 80


def test_a_demo_page_opened_mid_demo_shows_the_answer_so_far(server: Server, page: Page) -> None:
    started = server.post("/api/demo", {"prompt": "Tell a long story.", "teams": ["lg"],
                                        "max_tokens": 400}, token=OPERATOR)
    assert started.status_code == 201, started.text
    page.wait_for_timeout(1000)  # lg is a second into its four-second answer
    page.goto(f"{server.url}/overlays/demo.html")
    answer = page.locator('.col[data-team="lg"] .answer')
    expect(answer).to_contain_text("Thank you for the question")
    expect(page.locator('.col[data-team="lg"] .state')).to_have_text("live")
    shown = len(answer.inner_text())
    page.wait_for_timeout(500)
    assert len(answer.inner_text()) != shown or shown >= 700  # and it goes on streaming

def test_every_page_takes_its_options_and_asks_only_for_the_public_view(
        server: Server, page: Page) -> None:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "token" in r.url.lower()
            or "authorization" in r.headers else None)
    page.on("websocket", lambda ws: sent.append(ws.url) if "token" in ws.url.lower() else None)
    options = "?lang=ko&bg=101820&team=skt"
    korean = {"scoreboard.html": (".board .head", "총점"), "reveal.html": (".board .head", "총점"),
              "demo.html": (".col .metrics", "첫 토큰"), "lower-third.html": ("#name", "SK텔레콤"),
              "ticker.html": (".ticker .item", "첫 토큰")}
    started = server.post("/api/demo", {"prompt": "안녕하세요", "teams": ["lg", "skt"],
                                        "max_tokens": 8}, token=OPERATOR)
    assert started.status_code == 201, started.text
    for name, (where, text) in korean.items():
        page.goto(f"{server.url}/overlays/{name}{options}")
        expect(page.locator(where).first).to_contain_text(text)
        assert page.evaluate("document.documentElement.lang") == "ko"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == \
            "rgb(16, 24, 32)", name
        if name in ("scoreboard.html", "reveal.html"):  # the team's row stands out
            expect(page.locator(".row.focus")).to_have_count(1)
            expect(page.locator('.row[data-team="skt"]')).to_contain_class("focus")
        if name in ("demo.html", "ticker.html"):  # only that team
            expect(page.locator("[data-team]:visible")).to_have_count(1)
            expect(page.locator('[data-team="skt"]').first).to_be_visible()
    assert not sent, f"a page sent a token: {sent}"


def test_with_proof_1_a_published_result_shows_the_signed_roots_fingerprint(
        server: Server, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        board = context.new_page()
        board.goto(f"{server.url}/overlays/scoreboard.html?proof=1&lang=ko&bg=101820")
        plain = context.new_page()
        plain.goto(f"{server.url}/overlays/scoreboard.html")
        expect(board.locator(".board .row")).to_have_count(5)
        score_sample_round(server)
        board.wait_for_timeout(300)
        expect(board.locator("#proof")).to_have_class("proof-line")  # nothing published yet
        assert server.post("/api/rounds/r1/publish").status_code == 201
        note = httpx.get(f"{server.url}/api/log/checkpoint").text.split("\n")
        size, root = note[1], note[2]
        host = server.url.removeprefix("http://")
        hexed = base64.b64decode(root)[:6].hex().upper()
        print_ = f"{hexed[:4]} {hexed[4:8]} {hexed[8:]}"  # as /verify shows it
        expect(board.locator("#proof")).to_have_text(
            f"검증 가능한 결과 · 기록 {size}개 서명 · {print_} · {host}/verify")
        expect(board.locator("#proof")).to_have_class("proof-line on")
        expect(plain.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
        expect(plain.locator("#proof")).to_have_text("")  # only with ?proof=1
        board.wait_for_timeout(1500)
        board.screenshot(path=str(ARTIFACTS / "scoreboard-proof-ko.png"))
        # A page opened after the checkpoint was sent reads it from /api/log/checkpoint.
        late = context.new_page()
        late.goto(f"{server.url}/overlays/reveal.html?proof=1&lang=en")
        expect(late.locator("#proof")).to_have_text(
            f"Verifiable result · {size} entries signed · {print_} · {host}/verify")
    finally:
        context.close()


def test_with_the_server_down_pages_keep_their_last_frame_and_print_no_trouble_on_air(
        server: Server, browser: Browser) -> None:
    """Issue 19, finding 1: no "Reconnecting…" on air. A page keeps its last good frame;
    with ?fade=N it fades out after N seconds without its stream, and back in once it has
    caught up."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        score_sample_round(server)
        assert server.post("/api/rounds/r1/publish").status_code == 201
        pages = {}
        for path in ("scoreboard.html?lang=ko", "reveal.html?lang=ko", "ticker.html?lang=ko",
                     "scoreboard.html?lang=en&fade=1"):
            pages[path] = context.new_page()
            pages[path].goto(f"{server.url}/overlays/{path}")
            expect(pages[path].locator("body")).to_have_attribute("data-link", "live")
        held = pages["scoreboard.html?lang=ko"]
        expect(held.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
        port = server.port
        server.stop()
        for path, page in pages.items():
            expect(page.locator("body")).to_have_attribute("data-link", "down")
            text = page.inner_text("body")
            assert "연결" not in text and "onnect" not in text, (path, text)
        expect(held.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
        assert held.evaluate("getComputedStyle(document.body).opacity") == "1"
        faded = pages["scoreboard.html?lang=en&fade=1"]
        expect(faded.locator("body")).to_have_class("stale", timeout=5000)
        faded.wait_for_function("getComputedStyle(document.body).opacity === '0'")
        held.screenshot(path=str(ARTIFACTS / "scoreboard-server-down-ko.png"))
        server.start(port)
        expect(faded.locator("body")).to_have_attribute("data-link", "live", timeout=20000)
        expect(faded.locator("body")).not_to_have_class("stale")
        expect(faded.locator('.row[data-team="lg"] .total')).to_have_text("80.65")
    finally:
        context.close()


def test_no_page_asks_for_anything_the_server_does_not_have(
        server: Server, browser: Browser) -> None:
    """Issue 19, finding 8: /favicon.ico was a 404 on every page."""
    score_sample_round(server)  # a publication, so /verify has a signed checkpoint to read
    assert server.post("/api/rounds/r1/publish").status_code == 201
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    failed: list[str] = []
    context.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
               else None)
    try:
        for path in [f"/overlays/{p}" for p in (*PAGES, "bench.html")] + ["/", "/remote",
                                                                          "/verify"]:
            page = context.new_page()
            page.goto(f"{server.url}{path}")
            page.wait_for_timeout(200)
            page.close()
        assert not failed, failed
        # Headless Chromium asks for no icon; a desktop browser and OBS's do.
        icon = context.request.get(f"{server.url}/favicon.ico")
        assert icon.status == 200
        assert icon.headers["content-type"] == "image/svg+xml"
        assert icon.body().startswith(b"<svg")
    finally:
        context.close()


# Each character of the answer whose line is below the one before it, with the characters
# either side: a break inside a word when neither side is a space.
BREAKS_INSIDE_WORDS = """(selector) => {
  const node = document.querySelector(selector).firstChild;
  const range = document.createRange();
  const inside = [];
  let top = null;
  for (let i = 0; i < node.data.length; i++) {
    range.setStart(node, i); range.setEnd(node, i + 1);
    const rect = range.getClientRects()[0];
    if (!rect) continue;
    if (top !== null && rect.top > top + 5 && !/\\s/.test(node.data[i - 1] + node.data[i]))
      inside.push(node.data.slice(Math.max(0, i - 3), i) + "/" + node.data.slice(i, i + 3));
    top = rect.top;
  }
  return inside;
}"""


def test_korean_breaks_between_words_and_failures_read_kindly_with_no_control_characters(
        server: Server, page: Page) -> None:
    """Issue 19, findings 2 and 3: Korean broke in the middle of words (모/든, 드립니/다);
    the Korean page showed raw English engine errors; control characters from a model's
    answer reached the page."""
    page.goto(f"{server.url}/overlays/demo.html?lang=ko")
    started = server.post("/api/demo", {"prompt": "모델을 두 문장으로 소개해 주세요.",
                                        "teams": ["lg", "skt", "upstage", "naver", "ncai"],
                                        "max_tokens": 120}, token=OPERATOR)
    assert started.status_code == 201, started.text
    column = '.col[data-team="lg"] .answer'
    expect(page.locator(column)).to_contain_text("질문해 주셔서 감사합니다", timeout=15000)
    expect(page.locator('.col[data-team="lg"] .state')).to_have_text("완료", timeout=15000)
    lines = page.evaluate("(s) => document.querySelector(s).getClientRects().length", column)
    assert lines >= 1
    assert page.evaluate(BREAKS_INSIDE_WORDS, column) == []
    # Finding 2: the teams that could not answer say so kindly, in Korean; no engine error
    # ("team 'skt': connection refused") and no rate reach the screen.
    for team in ("skt", "upstage", "naver", "ncai"):
        expect(page.locator(f'.col[data-team="{team}"] div.error')).to_have_text(
            "이번에는 답을 받지 못했습니다")
        expect(page.locator(f'.col[data-team="{team}"] .tps')).to_have_text("–")
    assert "team '" not in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "demo-korean.png"))
    shown = page.evaluate("""async () => {
        const { plainText } = await import("/overlays/js/lib/client.js");
        return plainText("a\\u0007b\\u202ec\\u2066d\\u0000e\\nf\\tg\\u200bh");
    }""")
    assert shown == "abcde\nf\tg\u200bh"
