"""A viewer that falls behind costs bounded memory and is resynced with a snapshot."""

from __future__ import annotations

from pathlib import Path

import orjson

from showcase import commands
from showcase.engine import Engine
from showcase.fanout import RESYNC, Hub
from showcase.showfile import load_show, sample_show_path
from showcase.streams import messages


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
