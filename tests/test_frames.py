"""The frame writer (showcase/server/frames.py) and the private internals it relies on.

frames.py subclasses uvicorn's WebSocket protocol, which is not public API. These tests
fail loudly, naming the package and its version, when the installed uvicorn or
websockets is outside the range the module is tested with, or when something it uses
is gone, rather than letting viewers silently fall back to the slow path or break.
"""

from __future__ import annotations

import asyncio
import socket
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from websockets.asyncio.client import connect

from showcase.runtime.fanout import text_frame
from showcase.server.frames import RELIED_ON, TESTED, FrameWritingProtocol
from showcase.server.streams import FRAMES_EXTENSION

ROOT = Path(__file__).resolve().parent.parent


def _missing(writer: Any) -> list[str]:
    return [name for name in RELIED_ON if not hasattr(writer, name)]


def _versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in TESTED)


@pytest.mark.parametrize("package", sorted(TESTED))
def test_frames_dependency_is_installed_within_the_tested_range(package: str) -> None:
    installed = version(package)
    assert installed in SpecifierSet(TESTED[package]), (
        f"{package} {installed} is installed, outside the range showcase/server/frames.py "
        f"is tested with ({package}{TESTED[package]}): it subclasses uvicorn's WebSocket "
        "protocol, a private interface. Run tests/test_frames.py and the fan-out benchmark "
        "against this version, then widen TESTED and pyproject.toml together.")


@pytest.mark.parametrize("package", sorted(TESTED))
def test_frames_tested_range_is_the_one_pyproject_states(package: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    stated = {r.name: r.specifier for r in map(Requirement, project["dependencies"])}
    assert stated.get(package) == SpecifierSet(TESTED[package]), (
        f"pyproject.toml says {package}{stated.get(package)}, frames.py is tested with "
        f"{package}{TESTED[package]}: keep the two the same")


def test_frames_writer_is_offered_to_the_app_and_writes_prepared_frames() -> None:
    """Through a real uvicorn server and a real WebSocket client: the connection is
    offered to the app as a writer, a frame written through it arrives as a message, and
    once the connection is closed the writer refuses frames instead of writing them."""
    offered: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        writer = scope["extensions"].get(FRAMES_EXTENSION, {}).get("writer")
        offered.append(writer)
        if writer is not None and not _missing(writer):
            writer.write_frame(text_frame(b"written straight to the transport"))
        else:
            await send({"type": "websocket.send", "text": "no writer"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def scenario() -> list[str]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, ws=FrameWritingProtocol, lifespan="off",
                                log_level="warning")
        server = uvicorn.Server(config)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(server.serve(sockets=[sock]))
            try:
                async with asyncio.timeout(10):
                    while not server.started:
                        await asyncio.sleep(0.01)
                    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                        received = [str(await ws.recv())]
                    # the client closed: give the server a moment to see it
                    while offered and not getattr(offered[0], "disconnected", True):
                        await asyncio.sleep(0.01)
            finally:
                server.should_exit = True
        sock.close()
        return received

    received = asyncio.run(scenario())
    assert offered and offered[0] is not None, (
        f"FrameWritingProtocol offered no writer ({_versions()}): uvicorn's "
        "handle_connect or the handshake's scope changed")
    writer = offered[0]
    assert _missing(writer) == [], (
        f"uvicorn's WebSocket protocol has no {_missing(writer)} ({_versions()}): "
        "showcase/server/frames.py relies on them")
    assert received == ["written straight to the transport"]
    assert writer.write_frame(text_frame(b"too late")) is False  # closed: nothing written
