"""The judge's page in a real browser (Debian's Chromium through Playwright), at phone size,
in Korean and in English: a judge signs in with their own token, enters and corrects their
own sheets after a confirm dialog that names what will be recorded, and a refusal is shown
in words."""

from __future__ import annotations

import os

from playwright.sync_api import Page, expect

from tests.conftest import JUDGE_TOKENS, OPERATOR, PRESENTER, Server

SHOTS = os.environ.get("SHOWCASE_SCREENSHOTS", "")  # a folder: keep screenshots to look at


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"judge-{name}.png"), full_page=True)


def sheet_of(server: Server, team: str, judge: str) -> float | None:
    (r1,) = [r for r in server.state(OPERATOR)["state"]["rounds"] if r["id"] == "r1"]
    return r1["sheets"].get("expert", {}).get(team, {}).get(judge)  # type: ignore[no-any-return]


def row(page: Page, team: str) -> object:
    return page.locator(f'section[data-team="{team}"] .sheet[data-criterion="expert"]')


def sign_in(page: Page, token: str) -> None:
    page.fill("#token", token)
    page.click("#login button")


def test_judge_page_enters_and_corrects_a_sheet_in_korean(server: Server, phone: Page) -> None:
    phone.goto(f"{server.url}/judge")
    sign_in(phone, JUDGE_TOKENS["kim"])
    expect(phone.locator("#who")).to_have_text("심사위원 Kim Jiwon")
    expect(phone.locator("section.team")).to_have_count(5)
    lg = phone.locator('section[data-team="lg"]')
    expect(lg.locator("h2")).to_have_text("LG AI연구원")
    expect(lg.locator(".what")).to_have_text("전문가 평가 (0–100점)")
    expect(lg.locator(".now")).to_have_text("비어 있음")

    lg.locator("input").fill("88")
    lg.locator("button").click()
    expect(phone.locator("#confirm-what")).to_have_text("LG AI연구원 · 전문가 평가 · 88점")
    shot(phone, "ko-confirm")
    assert sheet_of(server, "lg", "kim") is None  # nothing is sent before the confirmation
    phone.click("#confirm-yes")
    expect(phone.locator("#notice")).to_contain_text("기록됨: LG AI연구원 · 전문가 평가 · 88점")
    expect(lg.locator(".now")).to_have_text("현재 88점")
    assert sheet_of(server, "lg", "kim") == 88

    # A correction names the value it replaces and needs a reason.
    lg.locator("input").fill("90")
    expect(lg.locator("button")).to_have_text("수정")
    lg.locator("button").click()
    expect(phone.locator("#confirm-what")).to_have_text(
        "LG AI연구원 · 전문가 평가 · 90점 (현재 88점을 바꿉니다)")
    phone.fill("#confirm-reason", "합산 오류")
    phone.click("#confirm-yes")
    expect(lg.locator(".now")).to_have_text("현재 90점")
    shot(phone, "ko-sheets")
    assert sheet_of(server, "lg", "kim") == 90
    with server.client(OPERATOR) as op:
        last = op.get("/api/log", params={"last": 1}).json()["events"][0]
    assert (last["actor"], last["data"]["reason"], last["data"]["previous"]) == (
        "judge:kim", "합산 오류", 88)


def test_judge_page_shows_refusals_in_words_in_english(server: Server, phone: Page) -> None:
    phone.goto(f"{server.url}/judge?lang=en")
    sign_in(phone, PRESENTER)
    expect(phone.locator("#error")).to_have_text("This page needs a judge's own token.")
    sign_in(phone, "not-a-token-of-this-show")
    expect(phone.locator("#error")).to_have_text("the token is not valid for this show")

    sign_in(phone, JUDGE_TOKENS["lee"])
    expect(phone.locator("#who")).to_have_text("Judge Lee Seojun")
    skt = phone.locator('section[data-team="skt"]')
    expect(skt.locator(".what")).to_have_text("Expert review (0–100 points)")
    skt.locator("input").fill("140")
    skt.locator("button").click()
    expect(phone.locator("#error")).to_have_text("Enter a number from 0 to 100.")

    skt.locator("input").fill("79.5")
    # The page reads the sheets again every 4 s: what the judge is typing stays.
    phone.wait_for_timeout(4500)
    expect(skt.locator("input")).to_have_value("79.5")
    skt.locator("button").click()
    expect(phone.locator("#confirm-what")).to_have_text("SK Telecom · Expert review · 79.5 points")
    # Meanwhile an operator enters Lee's sheet at the desk: the page's entry is refused,
    # in the server's words, and nothing is overwritten.
    assert server.post("/api/scores", {"criterion": "expert", "team": "skt", "judge": "lee",
                                       "value": 70}).status_code == 201
    phone.click("#confirm-yes")
    expect(phone.locator("#error")).to_contain_text("is 70 now, not empty")
    shot(phone, "en-refused")
    assert sheet_of(server, "skt", "lee") == 70
    expect(skt.locator(".now")).to_have_text("now 70 points")
    # Lee's page shows Lee's sheets only: Kim's stay Kim's.
    assert sheet_of(server, "skt", "kim") is None
