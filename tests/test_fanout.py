"""A viewer that falls behind costs bounded memory and is resynced with a snapshot."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from showcase.core import commands
from showcase.core.showfile import load_show, sample_show_path
from showcase.runtime.engine import Engine
from showcase.runtime.fanout import RESYNC, Hub, Subscriber, text_frame
from showcase.runtime.live import Live
from showcase.server.streams import messages


async def test_a_full_queue_is_replaced_by_one_resync_and_others_are_untouched() -> None:
    hub = Hub(queue_limit=3)
    slow, fast = hub.subscribe("public"), hub.subscribe("public")
    for seq in range(1, 6):
        hub.publish(seq, lambda view, seq=seq: b"m%d" % seq)
        assert await fast.get(1) == (seq, b"m%d" % seq)
    # m1..m3 dropped at the 4th; m5 is not kept either: the snapshot will hold it
    assert await slow.get(1) is RESYNC
    assert await slow.get(0.01) is None
    assert hub.resyncs == 1


async def test_a_stalled_viewer_resumes_from_a_fresh_snapshot_without_duplicates(
        tmp_path: Path) -> None:
    engine = Engine(load_show(sample_show_path()), tmp_path, queue_limit=4).open()
    try:
        stream = messages(engine, "operator", since=None)
        first = await anext(stream)
        assert first[0] == 1 and b'"snapshot"' in first[1]  # type: ignore[index]
        for i in range(10):  # the viewer reads nothing meanwhile
            await engine.run("operator", commands.enter_score, "operator",
                             {"criterion": "benchmark", "team": "lg", "value": 50 + i,
                              **({"reason": "r"} if i else {})})
        resync = await anext(stream)
        assert resync[0] == 11  # type: ignore[index]
        snapshot = orjson.loads(resync[1])  # type: ignore[index]
        assert snapshot["type"] == "snapshot"
        assert snapshot["data"]["state"]["rounds"][0]["values"]["benchmark"]["lg"] == 59
        await engine.run("operator", commands.enter_score, "operator",
                         {"criterion": "benchmark", "team": "lg", "value": 1, "reason": "r"})
        following = await anext(stream)
        assert following[0] == 12  # type: ignore[index]
        assert engine.hub.resyncs == 1
        await stream.aclose()
        assert engine.hub.count()["operator"] == 0
    finally:
        engine.close()


class Transport:
    """A connection's transport as the hub sees it: takes frames unless paused."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.paused = False

    def write_frame(self, frame: bytes) -> bool:
        if self.paused:
            return False
        self.frames.append(frame)
        return True


def parse_text_frames(data: bytes) -> list[bytes]:
    """What a websockets client receives from ``data``: every frame a whole text message."""
    client = ClientProtocol(parse_uri("ws://viewer/"), state=State.OPEN, max_size=None)
    client.receive_data(data)
    frames = client.events_received()
    assert all(f.opcode is Opcode.TEXT and f.fin for f in frames)  # type: ignore[union-attr]
    return [bytes(f.data) for f in frames]  # type: ignore[union-attr]


async def sender(sub: Subscriber, sent: list[object]) -> None:
    """A connection's sender: takes what the hub queued for it, one at a time."""
    while True:
        sent.append(await sub.get())


def test_text_frame_is_what_a_websocket_client_reads() -> None:
    payloads = [b"", b"x" * 125, "심사".encode() * 40, b"y" * 126, b"z" * 70_000]
    assert parse_text_frames(b"".join(map(text_frame, payloads))) == payloads


async def test_a_caught_up_viewer_is_written_directly_and_a_paused_one_queues() -> None:
    hub = Hub(queue_limit=3)
    fast, slow = Transport(), Transport()
    subs = hub.subscribe("public", fast), hub.subscribe("public", slow)
    queued: list[object] = []
    senders = [asyncio.ensure_future(sender(sub, queued)) for sub in subs]
    await asyncio.sleep(0)  # both senders wait: caught up
    slow.paused = True
    for seq in range(1, 6):
        hub.publish(seq, lambda view, seq=seq: b"m%d" % seq)
    # The fast one got every frame at once, nothing queued; its sender never woke.
    assert parse_text_frames(b"".join(fast.frames)) == [b"m%d" % s for s in range(1, 6)]
    assert subs[0].seq == 5
    # The paused one queued, overflowed at its bound and is to start over.
    await asyncio.sleep(0)
    assert slow.frames == [] and queued == [RESYNC]
    assert hub.resyncs == 1
    for task in senders:
        task.cancel()


async def test_a_queued_message_is_never_overtaken_by_a_direct_write() -> None:
    hub = Hub(queue_limit=10)
    transport = Transport()
    sub = hub.subscribe("public", transport)
    queued: list[object] = []
    task = asyncio.ensure_future(sender(sub, queued))
    await asyncio.sleep(0)
    transport.paused = True
    hub.publish(1, lambda view: b"m1")  # queued
    transport.paused = False
    hub.publish(2, lambda view: b"m2")  # writable again, but behind m1: queued too
    assert transport.frames == []
    await asyncio.sleep(0)  # the sender takes m1 and m2 (and would send them)
    hub.publish(3, lambda view: b"m3")  # it is caught up again: written directly
    assert queued == [(1, b"m1"), (2, b"m2")]
    assert parse_text_frames(b"".join(transport.frames)) == [b"m3"]
    task.cancel()


async def test_live_frames_keep_their_rate_when_sending_them_takes_time() -> None:
    """Ten frames a second stay ten while a demo streams, even when each frame takes
    30 ms to go out to every viewer (it was 1 / (0.1 + 0.03) = 7.7 a second), and two
    frames never come closer than the interval."""
    sent: list[float] = []

    class SlowHub:
        def publish(self, seq: int | None, wire: object) -> None:
            sent.append(time.monotonic())
            time.sleep(0.03)  # the fan-out to many viewers, holding the loop

    live = Live(SlowHub(), 10)  # type: ignore[arg-type]
    async with live.running():
        live.start_demo(1, ["lg"])
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # tokens keep arriving
            live.update_team(1, "lg", text="토큰 ")
            await asyncio.sleep(0.01)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) >= 18, f"{len(sent)} frames in 2 s at 10 a second"
    assert min(gaps) >= 0.09, f"two frames {min(gaps) * 1000:.0f} ms apart"
