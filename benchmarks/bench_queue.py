"""The proxy's own queue against the team's TTFT: issue 21's case, measured.

One mock team (``showcase mock-team``: 230 ms to the first token, then 50 tokens 20 ms
apart, vLLM's wire format) behind ``showcase serve`` with ``max_connections = 16``; 24
streams start together through the proxy, so 8 wait at the proxy for a connection while
the first 16 are answered. For each stream this prints what the client saw (TTFT from
writing its request) and what the proxy recorded (``queue_ms``, and the team's
``ttft_ms``, from the request written to the team), then the team's rolling
``ttft_ms_p95`` as the public view shows it on air.

    .venv/bin/python benchmarks/bench_queue.py [--streams 24] [--connections 16]

Every process and temporary directory is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import spawn

PRESENTER = "bench-presenter-token-0123456789"
OPERATOR = "bench-operator-token-0123456789"


async def stream(client: httpx.AsyncClient, url: str, gate: asyncio.Event) -> float:
    body = {"messages": [{"role": "user", "content": "Say something."}], "stream": True}
    await gate.wait()
    sent = time.perf_counter()
    first = None
    async with client.stream("POST", url, json=body) as r:
        async for chunk in r.aiter_bytes():
            compact = chunk.replace(b": ", b":")
            if first is None and b'"content":"' in compact and b'"content":""' not in compact:
                first = (time.perf_counter() - sent) * 1e3
    if first is None:
        raise RuntimeError("no content")
    return first


async def run(url: str, team: str, streams: int) -> list[float]:
    headers = {"Authorization": f"Bearer {PRESENTER}"}
    limits = httpx.Limits(max_connections=streams + 1)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        # One request first: the proxy makes the team's client at its first request (SSL
        # contexts, pools), a cost of the first request only, which is not measured here.
        warm = asyncio.Event()
        warm.set()
        await stream(client, f"{url}/v1/teams/{team}/chat/completions", warm)
        gate = asyncio.Event()
        tasks = [asyncio.create_task(stream(client, f"{url}/v1/teams/{team}/chat/completions",
                                            gate)) for _ in range(streams)]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=24)
    parser.add_argument("--connections", type=int, default=16)
    opts = parser.parse_args()
    env = {"SHOWCASE_OPERATOR_TOKEN": OPERATOR, "SHOWCASE_PRESENTER_TOKEN": PRESENTER}
    with tempfile.TemporaryDirectory() as tmp:
        mock, mock_url = spawn(["mock-team", "--port", "0", "--ttft-ms", "230", "--itl-ms",
                                "20", "--tokens", "50"], r"listening on (http://\S+)", env)
        try:
            show = Path(tmp) / "show.toml"
            show.write_text(
                '[show]\ntitle_en = "queue"\n[[teams]]\nid = "t"\nname_ko = "t"\n'
                f'name_en = "t"\nendpoint = "{mock_url}"\nmodel = "mock-model"\n'
                f"[proxy]\nmax_connections = {opts.connections}\nhealth_interval = 0\n",
                encoding="utf-8")
            serve, url = spawn(["serve", str(show), "--port", "0", "--data", f"{tmp}/data"],
                               r"serving .* on (http://\S+)", env)
            try:
                seen = asyncio.run(run(url, "t", opts.streams))
                time.sleep(0.5)
                auth = {"Authorization": f"Bearer {OPERATOR}"}
                events = httpx.get(f"{url}/api/log", headers=auth, params={
                    "type": "request_measured", "limit": 1000}).json()["events"]
                public = httpx.get(f"{url}/api/state").json()["state"]["telemetry"]["t"]
            finally:
                serve.terminate()
                serve.wait(10)
        finally:
            mock.terminate()
            mock.wait(10)
    # queue_ms is absent in a checkout from before issue 21 (run there for comparison).
    metrics = sorted((e["data"]["metrics"] for e in events[1:]),
                     key=lambda m: m.get("queue_ms") or 0)
    print(f"{opts.streams} streams, {opts.connections} connections; mock TTFT 230 ms")
    print("client TTFT ms (sorted): " + " ".join(f"{s:.0f}" for s in sorted(seen)))
    print("proxy queue_ms:          " + " ".join(f"{m.get('queue_ms') or 0:.0f}" for m in metrics))
    print("team ttft_ms:            " + " ".join(f"{m['ttft_ms']:.0f}" for m in metrics))
    print(f"team ttft_ms median {statistics.median(m['ttft_ms'] for m in metrics):.1f}, "
          f"max {max(m['ttft_ms'] for m in metrics):.1f}; queue_ms + ttft_ms max "
          f"{max((m.get('queue_ms') or 0) + m['ttft_ms'] for m in metrics):.1f}; client TTFT max "
          f"{max(seen):.1f}")
    print(f"on air (public telemetry): ttft_ms_p50 {public['ttft_ms_p50']}, "
          f"ttft_ms_p95 {public['ttft_ms_p95']}")


if __name__ == "__main__":
    main()
