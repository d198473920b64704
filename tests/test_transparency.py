"""The server's side of verifiable results: the signing key at rest, the tree over committed
events, and when checkpoints are signed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from showcase.core import checkpoint as cp
from showcase.core import events as ev
from showcase.core.errors import LogError
from showcase.core.merkle import MerkleTree, canonical_line, leaf_hash
from showcase.runtime.transparency import Transparency, load_or_create_key, origin_of


def event(seq: int, event_type: str = ev.SCORE_ENTERED, **data: object) -> ev.Event:
    return ev.Event(seq, 1000.0 + seq, event_type, "operator", dict(data))


def test_transparency_key_is_made_once_private_and_refused_when_readable(tmp_path: Path
                                                                          ) -> None:
    data = tmp_path / "data"
    key = load_or_create_key(data)
    path = data / "log.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    again = load_or_create_key(data)
    assert str(cp.verifier("o", again)) == str(cp.verifier("o", key))  # the same key
    os.chmod(path, 0o644)
    with pytest.raises(LogError, match="can be read by others"):
        load_or_create_key(data)
    os.chmod(path, 0o600)
    path.write_bytes(b"not a key")
    with pytest.raises(LogError, match="not a PEM private key"):
        load_or_create_key(data)


def test_transparency_tree_is_the_exports_and_signs_at_publication(tmp_path: Path) -> None:
    log = Transparency(load_or_create_key(tmp_path), origin_of("Sovereign AI — Round 1"),
                       interval=10)
    assert log.origin == "showcase/sovereign-ai-round-1"
    events = [event(1, ev.ROUND_STARTED, round="r1"), event(2, value=7),
              event(3, ev.ROUND_PUBLISHED, round="r1")]
    log.append(events[0])
    log.append(events[1])
    assert not log.due(events[1], now=1005)  # nothing announced, within the interval
    assert log.due(events[1], now=1011)      # unsigned events older than the interval
    log.append(events[2])
    assert log.due(events[2], now=1003)      # results announced: sign at once
    note = log.sign(now=1003)
    signed = cp.verify(note, cp.parse_verifier(str(log.verifier)))
    lines = [canonical_line(e.to_json()) for e in events]
    assert signed.size == 3 and signed.time == 1003
    assert signed.root == MerkleTree(leaf_hash(x) for x in lines).root()
    assert not log.due(None, now=2000)       # nothing new since: nothing to sign
    assert log.message() == {"seq": None, "type": "checkpoint",
                             "data": {"size": 3, "note": note}}
    with pytest.raises(LogError, match="seq 5 cannot follow"):
        log.append(event(5))
