"""Shared fixtures: a real showcase server in a subprocess, on a free port, with real SQLite."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from showcase.core.showfile import sample_show_path

if TYPE_CHECKING:  # the browser stack loads only for the tests that drive a page
    from playwright.sync_api import Browser, Page

OPERATOR = "operator-token-for-tests"
PRESENTER = "presenter-token-for-tests"
JUDGES = ["kim", "lee", "park", "choi", "jung"]  # the sample show's judges
# Each judge's own token, as a deployment gives them (SHOWCASE_JUDGE_TOKEN_KIM, ...).
JUDGE_TOKENS = {j: f"judge-{j}-token-for-tests" for j in JUDGES}
JUDGE = JUDGE_TOKENS["kim"]  # a judge's token: judge kim's
TOKENS_ENV = {
    "SHOWCASE_OPERATOR_TOKEN": OPERATOR,
    "SHOWCASE_PRESENTER_TOKEN": PRESENTER,
    **{f"SHOWCASE_JUDGE_TOKEN_{j.upper()}": token for j, token in JUDGE_TOKENS.items()},
}
SERVING = re.compile(r"serving .* on (http://\S+)")


class Server:
    """``showcase serve`` as a user runs it; restartable on the same data directory."""

    def __init__(self, showfile: Path, data: Path, args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.showfile = showfile
        self.data = data
        self.args = list(args)  # more options for ``showcase serve``, e.g. --redis URL
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, port: int = 0) -> Server:
        env = {**os.environ, **TOKENS_ENV, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "showcase", "serve", str(self.showfile), "--port", str(port),
             "--data", str(self.data), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            found = SERVING.search(line)
            if found:
                self.url = found.group(1)
                # Keep reading its output, so that a chatty server never blocks on a full pipe.
                threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
                return self
        self.stop()
        raise RuntimeError("server did not start:\n" + "".join(self.output))

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self) -> Server:
        port = self.port
        self.stop()
        return self.start(port)

    # -- convenience -------------------------------------------------------

    def client(self, token: str | None = OPERATOR) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def post(self, path: str, body: Any = None, token: str | None = OPERATOR) -> httpx.Response:
        with self.client(token) as c:
            return c.post(path, json=body if body is not None else {})

    def state(self, token: str | None = OPERATOR) -> dict[str, Any]:
        with self.client(token) as c:
            response = c.get("/api/state")
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def showfile(tmp_path: Path) -> Path:
    """The sample show, without health checks: nothing listens on its teams' ports here,
    and five 'down' events would change every seq a test counts on."""
    path = tmp_path / "show.toml"
    path.write_text(sample_show_path().read_text(encoding="utf-8")
                    + "\n[proxy]\nhealth_interval = 0\n", encoding="utf-8")
    return path


@pytest.fixture
def server(tmp_path: Path, showfile: Path) -> Iterator[Server]:
    srv = Server(showfile, tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


SAMPLE_BENCHMARK = {"lg": 71.2, "skt": 61.6, "upstage": 59.73, "naver": 55.33, "ncai": 44.4}
SAMPLE_FEEDBACK = {"lg": 4.4, "skt": 4.3, "upstage": 4.0, "naver": 3.8, "ncai": 3.5}
SAMPLE_SHEETS = {
    "lg": [88, 91, 85, 90, 87], "skt": [80, 84, 79, 83, 82], "upstage": [82, 78, 85, 80, 79],
    "naver": [75, 77, 72, 79, 74], "ncai": [70, 68, 73, 66, 71],
}


def score_sample_round(srv: Server) -> None:
    """Enter every score of the sample round r1 over HTTP, as operator and judges would:
    each judge's sheets with that judge's own token."""
    with srv.client(OPERATOR) as op:
        for team, value in SAMPLE_BENCHMARK.items():
            op.post("/api/scores", json={"criterion": "benchmark", "team": team,
                                         "value": value}).raise_for_status()
        enter_sheets(srv, {team: dict(zip(JUDGES, sheets, strict=True))
                           for team, sheets in SAMPLE_SHEETS.items()})
        for team, value in SAMPLE_FEEDBACK.items():
            op.post("/api/scores", json={"criterion": "feedback", "team": team,
                                         "value": value}).raise_for_status()


def enter_sheets(srv: Server, sheets: dict[str, dict[str, float]],
                 criterion: str = "expert") -> None:
    """Each judge enters their own sheets (team -> judge -> value) with their own token."""
    judges = {j: srv.client(token) for j, token in JUDGE_TOKENS.items()}
    try:
        for team, by_judge in sheets.items():
            for j, value in by_judge.items():
                judges[j].post("/api/scores", json={
                    "criterion": criterion, "team": team, "judge": j,
                    "value": value}).raise_for_status()
    finally:
        for client in judges.values():
            client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright, which downloads no browser of its own."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "the browser tests need Chromium: apt-get install chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A phone-sized touch screen (390x844): the remote, the judge and the voting pages."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    yield page
    context.close()
