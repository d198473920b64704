"""The anonymised vote log's canonical form and its hash, so anyone can recompute it.

The canonical line of a vote is its JSON object with keys sorted, no whitespace at all
(separators ``,`` and ``:``), non-ASCII characters written as themselves (not ``\\u``
escapes), encoded as UTF-8 and ended by one ``\\n``. Values are strings, integers,
booleans or null: floats are refused, because their text differs between JSON writers.
The log is these lines in the order the server exports them (``votes.ndjson``), and its
hash is SHA-256 over the file's exact bytes: ``sha256sum votes.ndjson`` recomputes it.
In Python, without showcase::

    json.dumps(vote, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

The server records this hash in the tally's event, so the published log can be checked
against the figures it produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from showcase.voting.errors import VotingError

Scalar = str | int | bool | None


def canonical_line(vote: Mapping[str, Scalar]) -> bytes:
    """One vote as its canonical NDJSON line (bytes, ending in a newline)."""
    for key, value in vote.items():
        if not isinstance(key, str):
            raise VotingError("a vote record's keys must be strings", f"key {key!r}")
        if value is not None and not isinstance(value, str | int | bool):
            raise VotingError("a vote record's values must be strings, integers, booleans "
                              "or null", f"{key}: {value!r}")
    text = json.dumps(dict(vote), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def ndjson(votes: Iterable[Mapping[str, Scalar]]) -> bytes:
    """The whole log, as the export serves it."""
    return b"".join(canonical_line(v) for v in votes)


def log_hash(votes: Iterable[Mapping[str, Scalar]]) -> str:
    """SHA-256 (hex) of the log's canonical bytes, computed as the lines stream by."""
    digest = hashlib.sha256()
    for vote in votes:
        digest.update(canonical_line(vote))
    return digest.hexdigest()
