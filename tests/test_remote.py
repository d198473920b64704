"""The presenter remote in a real browser: headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from tests.conftest import JUDGE, OPERATOR, PRESENTER, Server, score_sample_round


def step(server: Server) -> int:
    return int(server.state(OPERATOR)["state"]["rounds"][0]["reveal"]["step"])


def test_the_remote_steps_through_the_reveal_and_needs_two_taps_to_eliminate(
        server: Server, phone: Page) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    # guard=0: this test taps as fast as the page answers (the guard has a test of its own).
    phone.goto(f"{server.url}/remote?guard=0")
    # It asks for the token once; a judge's token is refused with the reason.
    phone.fill("#token", JUDGE)
    phone.click("form button")
    expect(phone.locator("#token")).to_be_visible()
    phone.fill("#token", PRESENTER)
    phone.click("form button")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    expect(phone.locator("#next")).to_have_text("First evaluation: the results")
    expect(phone.locator("#conn")).to_have_text("live")

    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 1 / 19")
    assert step(server) == 1
    expect(phone.locator("#now")).to_have_text("First evaluation: the results")
    expect(phone.locator("#next")).to_contain_text("Benchmarks: NC AI")

    # Another presenter's press shows up here at once, over the stream.
    assert server.post("/api/reveal/goto", {"to": 17}, token=PRESENTER).status_code == 201
    expect(phone.locator("#step")).to_have_text("step 17 / 19")
    expect(phone.locator("#next")).to_have_text("NC AI is eliminated")
    expect(phone.locator("#go")).to_have_text("Arm elimination")
    phone.click("#go")
    expect(phone.locator("#go")).to_have_text("CONFIRM")
    assert step(server) == 17  # armed, nothing announced yet
    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 18 / 19")
    expect(phone.locator("#now")).to_have_text("NC AI is eliminated")

    phone.click("#back")
    expect(phone.locator("#step")).to_have_text("step 17 / 19")
    phone.reload()  # the token is remembered on this device
    expect(phone.locator("#step")).to_have_text("step 17 / 19")


def test_the_remote_shows_when_the_operator_locks_it(server: Server, phone: Page) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201
    phone.goto(f"{server.url}/remote#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    assert "token" not in phone.url  # the token left the address bar
    assert server.post("/api/reveal/lock", {"locked": True, "reason": "ad break"}
                       ).status_code == 201
    expect(phone.locator("#locked")).to_have_text("Locked by the operator: ad break")
    expect(phone.locator("#go")).to_be_disabled()


def frozen(server: Server) -> None:
    score_sample_round(server)
    assert server.post("/api/rounds/r1/freeze").status_code == 201


def test_the_remote_ignores_a_second_tap_within_its_guard_time(server: Server,
                                                                phone: Page) -> None:
    frozen(server)
    phone.goto(f"{server.url}/remote?guard=3000#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    phone.click("#go")
    phone.click("#go")  # a second tap at once: ignored, and it says so
    expect(phone.locator("#note")).to_have_text("Second tap ignored (within 3 s)")
    expect(phone.locator("#step")).to_have_text("step 1 / 19")
    # Once the guard time is over, a tap works again; by then the page knows step 1.
    expect(phone.locator("body")).not_to_have_class("guarded", timeout=10_000)
    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 2 / 19")
    log = server.client().get("/api/log", params={"type": "reveal_step"}).json()["events"]
    assert [e["data"]["step"] for e in log] == [1, 2]
    # The guard is a setting of the phone's, kept across reloads.
    phone.click("summary")
    phone.select_option("#guard", "500")
    phone.goto(f"{server.url}/remote")
    expect(phone.locator("#guard")).to_have_value("500")


def test_the_remote_asks_before_logging_out_or_resetting(server: Server, phone: Page) -> None:
    frozen(server)
    assert server.post("/api/reveal/goto", {"to": 3}, token=PRESENTER).status_code == 201
    phone.goto(f"{server.url}/remote#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("step 3 / 19")
    expect(phone.locator("#forget")).to_be_hidden()  # not beside the reveal's buttons
    phone.click("summary")
    phone.click("#forget")
    expect(phone.locator("#ask-text")).to_contain_text("This phone logs out")
    phone.click("#ask-no")
    expect(phone.locator("#ask")).to_be_hidden()
    expect(phone.locator("#remote")).to_be_visible()  # still logged in
    phone.click("#reset")
    expect(phone.locator("#ask-text")).to_have_text(
        "Every screen goes back from step 3 to the start (step 0, before the first step).")
    assert step(server) == 3  # asking sends nothing
    phone.click("#ask-yes")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    assert step(server) == 0
    phone.click("#forget")
    phone.click("#ask-yes")
    expect(phone.locator("#token")).to_be_visible()


def test_the_remote_speaks_korean_and_english(server: Server, phone: Page) -> None:
    frozen(server)
    phone.goto(f"{server.url}/remote?lang=ko#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("0 / 19 단계")
    expect(phone.locator("#go")).to_have_text("다음 ▶")
    expect(phone.locator("#ff")).to_have_text("» 다음 멈춤까지")
    expect(phone.locator("#conn")).to_have_text("연결됨")
    # The script's own words too: the next step reads in Korean, as the presenter says it.
    expect(phone.locator("#next")).to_have_text("1차 평가: 결과 발표")
    phone.screenshot(path="/tmp/desk-remote-ko.png")
    phone.click("header .lang")
    expect(phone.locator("#go")).to_have_text("Next ▶")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    expect(phone.locator("#next")).to_have_text("First evaluation: the results")
    expect(phone.locator("#conn")).to_have_text("live")
    phone.click("summary")
    phone.screenshot(path="/tmp/desk-remote-en.png")
    phone.goto(f"{server.url}/remote")  # the language picked is kept on this device
    expect(phone.locator("#go")).to_have_text("Next ▶")


def test_each_press_carries_its_own_idempotency_key_and_a_retry_the_same(
        server: Server, phone: Page) -> None:
    frozen(server)
    keys: list[str] = []

    def drop_the_first(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.abort("connectionreset")  # the network drops the first try
        else:
            route.continue_()

    phone.route("**/api/reveal/next", drop_the_first)
    phone.goto(f"{server.url}/remote?guard=0#token={PRESENTER}")
    expect(phone.locator("#step")).to_have_text("step 0 / 19")
    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 1 / 19")
    phone.click("#go")
    expect(phone.locator("#step")).to_have_text("step 2 / 19")
    assert len(keys) == 3 and len(keys[0]) == 32
    assert keys[0] == keys[1] != keys[2]  # the retry kept its key; a new press has its own
    assert step(server) == 2
