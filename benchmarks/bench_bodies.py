"""CPU per request body at the edge: parsed (a key twice refused) and decoded into its
declared type (free text normalised and checked, core/text.py), as both command paths do
before a command sees the state.

Three bodies: a score (plain ASCII, no colon in a string: the common command), a
disqualification whose reason holds a colon (the body is parsed a second time, keeping
every pair, to look for a key twice) and a replacement team with Korean names (NFC and
the character checks run). Run it against this checkout and against another one to
compare (its ``showcase`` first on the path):

    .venv/bin/python benchmarks/bench_bodies.py
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/bench_bodies.py

The median of ``--repeat`` runs of ``--bodies`` bodies each, in process CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import describe, machine

import showcase
from showcase.core.bodies import ScoreBody, StatusBody, TeamBody
from showcase.core.decode import decode_body
from showcase.server.web import parse_json

BODIES: dict[str, tuple[bytes, type]] = {
    "score": (b'{"criterion":"benchmark","team":"lg","value":71.5,"reason":"bench"}',
              ScoreBody),
    "reason with a colon": (
        b'{"reason":"vision encoder: 99.5% of weights match","announce":true}', StatusBody),
    "team, Korean names": (
        '{"id":"kakao","name_ko":"카카오 브레인","name_en":"Kakao Brain","org":"카카오",'
        '"reason":"replaces Naver Cloud from round 2"}'.encode(), TeamBody),
}


def per_body(body: bytes, kind: type, count: int) -> float:
    """Process CPU seconds per body, over ``count`` bodies."""
    read: Callable[[], object] = lambda: decode_body(parse_json(body), kind)  # noqa: E731
    started = time.process_time()
    for _ in range(count):
        read()
    return (time.process_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not 1 <= args.bodies <= 10_000_000 or not 1 <= args.repeat <= 100:
        parser.error("--bodies 1..10,000,000, --repeat 1..100")
    print(f"showcase from {Path(showcase.__file__).parents[1]}")
    print(describe(machine(tempfile.gettempdir())))
    for name, (body, kind) in BODIES.items():
        runs = [per_body(body, kind, args.bodies) for _ in range(args.repeat)]
        print(f"{name:20} {statistics.median(runs) * 1e6:6.2f} us a body "
              f"(median of {args.repeat} x {args.bodies:,}; "
              f"min {min(runs) * 1e6:.2f}, max {max(runs) * 1e6:.2f})")


if __name__ == "__main__":
    main()
