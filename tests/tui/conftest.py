"""The operator console against a real server (tests/conftest.py's ``Server``) on a free port,
with a real mock team (tests/test_proxy.py's ``Mock``) answering for every team.

The show here is a small one of the console's own, scored over HTTP by the fixture: its
numbers stay put when the sample show changes, which the snapshot tests need.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from showcase_tui.app import ConsoleApp
from textual.pilot import Pilot

from tests.conftest import OPERATOR, Server, enter_sheets
from tests.test_proxy import Mock

SHOW = """
[show]
title_ko = "콘솔 시험"
title_en = "Console test show"
precision = 2
frame_rate = 20

[[judges]]
id = "kim"
name = "Kim Jiwon"

[[judges]]
id = "lee"
name = "Lee Seojun"

{teams}

[[criteria]]
id = "benchmark"
name_ko = "벤치마크"
name_en = "Benchmarks"
points = 60
normalise = "linear"
baseline = 0
maximum = 100
scale = [0, 100]

[[criteria]]
id = "expert"
name_ko = "전문가 평가"
name_en = "Expert review"
points = 40
normalise = "linear"
baseline = 0
maximum = 100
scale = [0, 100]
source = "judges"
trim = false

[[rounds]]
id = "r1"
name_ko = "1차 평가"
name_en = "First evaluation"
cut = {{ eliminate_bottom = 1 }}

[[rounds]]
id = "r2"
name_ko = "2차 평가"
name_en = "Second evaluation"
cut = {{ eliminate_bottom = 1 }}

[proxy]
health_interval = {health}
health_timeout = 0.4
"""
TEAMS = {"lg": ("LG AI Research", "#a50034"), "skt": ("SK Telecom", "#ea002c"),
         "upstage": ("Upstage", "#805cfb")}
BENCHMARK = {"lg": 80, "skt": 70, "upstage": 60}
SHEETS = {"lg": {"kim": 90, "lee": 80}, "skt": {"kim": 70, "lee": 80},
          "upstage": {"kim": 60, "lee": 50}}
SCORED_SEQ = 1 + len(BENCHMARK) + 2 * len(SHEETS)  # the show file, then every score


def write_show(folder: Path, endpoint: str, health: float) -> Path:
    teams = "\n".join(
        f'[[teams]]\nid = "{ident}"\nname_ko = "{name}"\nname_en = "{name}"\n'
        f'colour = "{colour}"\nendpoint = "{endpoint}"\n'
        for ident, (name, colour) in TEAMS.items())
    path = folder / "show.toml"
    path.write_text(SHOW.format(teams=teams, health=health), encoding="utf-8")
    return path


def score(srv: Server) -> None:
    with srv.client(OPERATOR) as op:
        for team, value in BENCHMARK.items():
            op.post("/api/scores", json={"criterion": "benchmark", "team": team,
                                         "value": value}).raise_for_status()
    enter_sheets(srv, SHEETS)


@pytest.fixture(scope="package")
def mock_team() -> Iterator[Mock]:
    """One mock team answers for every team: 300 tokens, 10 ms apart (3 s in all)."""
    mock = Mock("--dialect", "vllm", "--ttft-ms", "20", "--itl-ms", "10", "--tokens", "300")
    yield mock
    mock.stop()


@pytest.fixture
def long_stage(tmp_path: Path) -> Iterator[Server]:
    """The scored show with teams whose answers last a minute (6,000 tokens, 10 ms apart):
    still streaming when a console on a busy machine first looks."""
    mock = Mock("--dialect", "vllm", "--ttft-ms", "20", "--itl-ms", "10", "--tokens", "6000")
    srv = Server(write_show(tmp_path, f"{mock.url}/v1", 0.5), tmp_path / "data").start()
    try:
        score(srv)
        yield srv
    finally:
        srv.stop()
        mock.stop()


@pytest.fixture
def stage(tmp_path: Path, mock_team: Mock) -> Iterator[Server]:
    """A scored show whose teams answer (the mock) and are health-checked twice a second."""
    srv = Server(write_show(tmp_path, f"{mock_team.url}/v1", 0.5), tmp_path / "data").start()
    try:
        score(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[Server]:
    """The same show with nothing live (no health checks): every figure on screen is fixed."""
    srv = Server(write_show(tmp_path, "http://127.0.0.1:9/v1", 0), tmp_path / "data").start()
    try:
        score(srv)
        yield srv
    finally:
        srv.stop()


async def until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 10,
                what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout} s: {what or predicate}")
        await pilot.pause(0.05)


@asynccontextmanager
async def console(srv: Server, size: tuple[int, int] = (100, 30),
                  user: str = "desk-test") -> AsyncIterator[Pilot[Any]]:
    app = ConsoleApp(srv.url, OPERATOR, user=user)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.model.connected and app.model.state is not None,
                    what="the console connected")
        await pilot.pause(0.1)
        yield pilot


async def post(srv: Server, path: str, body: Any = None, token: str = OPERATOR
               ) -> httpx.Response:
    """A command from another desk, off the event loop the console runs on."""
    return await asyncio.to_thread(srv.post, path, body, token)


async def state(srv: Server) -> dict[str, Any]:
    return await asyncio.to_thread(srv.state)
