"""``showcase verify`` on a long export, and Merkle proofs at a million events (issue 16).

Writes an export of ``--events`` events made by the real command code (the sample show's
``show_configured``, then scores entered and corrected with a reason through
``commands.enter_score``, as bench_replay.py makes them), in canonical lines, then times:

  read     the lines parsed into events (``verify.read_export``)
  tree     the Merkle tree over every line (leaf and node hashes)
  audit    every event re-run through its command, and folded
  verify   all of it, as ``showcase verify events.ndjson`` runs it

and, on the tree of that many leaves, the time of an inclusion proof for a random leaf
against the latest size and of a consistency proof between two random sizes (median and
p99 of ``--proofs`` each).

    .venv/bin/python benchmarks/bench_verify.py [--events 1000000] [--proofs 10000]

Goals: verify of 1,000,000 events <= 20 s; a proof <= 2 ms p99 at 1,000,000 events.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import describe, machine
from bench_replay import make_events

from showcase.core.audit import audit
from showcase.core.merkle import MerkleTree, canonical_line, leaf_hash
from showcase.core.showfile import load_show, sample_show_path
from showcase.verify import read_export, verify_export


def timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    print(f"  {label:<8} {time.perf_counter() - start:8.2f} s", flush=True)
    return result


def tree_of(lines: list[bytes]) -> MerkleTree:
    return MerkleTree(leaf_hash(line) for line in lines)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(describe(machine(tmp)))
        show = load_show(sample_show_path())
        start = time.perf_counter()
        events = make_events(show, args.events)
        path = Path(tmp) / "events.ndjson"
        path.write_bytes(b"".join(canonical_line(e.to_json()) + b"\n" for e in events))
        del events
        print(f"export of {args.events:,} events ({path.stat().st_size / 2**20:.0f} MiB) "
              f"written in {time.perf_counter() - start:.1f} s")
        lines, parsed = timed("read", read_export, path)
        tree = timed("tree", tree_of, lines)
        timed("audit", audit, parsed)
        del parsed
        report = timed("verify", verify_export, path)
        assert report.tree.root() == tree.root()

        rng = random.Random(1)
        size = tree.size
        inclusion, consistency = [], []
        for _ in range(args.proofs):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            tree.inclusion_proof(index, size)
            inclusion.append(time.perf_counter() - t0)
            old = rng.randrange(1, size)
            t0 = time.perf_counter()
            tree.consistency_proof(old, size)
            consistency.append(time.perf_counter() - t0)
        print(f"inclusion proof at {size:,} leaves:   {percentiles(inclusion)}")
        print(f"consistency proof at {size:,} leaves: {percentiles(consistency)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
