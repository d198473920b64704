"""The log's Merkle tree as the server keeps it, and the checkpoints it signs.

Every committed event adds its canonical line's leaf hash (core/merkle.py), so the tree is
the export's tree, on SQLite and Redis alike. The server signs a checkpoint (core/checkpoint.py)
with its Ed25519 key at every publication of results (a round published, the reveal step
that completes a round) and at least every ``interval`` seconds while events arrive.

The key lives in the data directory (``log.key``, mode 0600, the directory 0700), made on
first start; its verifier key (``name+id+key``) is printed by ``showcase serve`` and served
at ``/api/log/key``, so anyone can check a checkpoint and the proofs built on it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from showcase.core import checkpoint as cp
from showcase.core import events as ev
from showcase.core.errors import LogError
from showcase.core.merkle import MerkleTree, canonical_line, leaf_hash

log = logging.getLogger(__name__)

KEY_FILE = "log.key"
SIGN_INTERVAL = 10.0  # seconds: the longest a new event waits for a signed checkpoint


def publishes(event: ev.Event) -> bool:
    """Whether an event announces results: then a checkpoint is signed at once."""
    return event.type == ev.ROUND_PUBLISHED or (
        event.type == ev.REVEAL_STEP and "publication" in event.data)


def origin_of(title: str) -> str:
    """A checkpoint origin (and key name) from the show's title: ``showcase/<slug>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:64] or "show"
    return f"showcase/{slug}"


def load_or_create_key(data_dir: str | Path, path: str | Path | None = None
                       ) -> Ed25519PrivateKey:
    """The signing key from ``path`` (default DIR/log.key), made there on first start."""
    key_path = Path(path) if path else Path(data_dir) / KEY_FILE
    if key_path.exists():
        mode = key_path.stat().st_mode & 0o777
        if mode & 0o077:
            raise LogError(f"{key_path} can be read by others (mode {mode:o})",
                           f"chmod 600 {key_path}: whoever reads it can sign checkpoints")
        try:
            key = load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise LogError(f"{key_path} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise LogError(f"{key_path} is not an Ed25519 key")
        return key
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    log.info("made the log's signing key in %s", key_path)
    return key


class Transparency:
    """The tree over every committed event, and the latest signed checkpoint."""

    def __init__(self, key: Ed25519PrivateKey, origin: str,
                 interval: float = SIGN_INTERVAL) -> None:
        self.key = key
        self.origin = origin
        self.verifier = cp.verifier(origin, key)
        self.interval = interval
        self.tree = MerkleTree()
        self.note: str | None = None  # the latest signed checkpoint
        self.signed_size = 0
        self.unsigned_since: float | None = None  # the ts of the oldest event not yet signed
        self.notes: dict[int, str] = {}  # every checkpoint signed, by tree size

    def append(self, event: ev.Event) -> None:
        """Add a committed event's leaf; events arrive in seq order, from seq 1."""
        if event.seq != self.tree.size + 1:
            raise LogError(f"the tree holds {self.tree.size} events; seq {event.seq} "
                           "cannot follow")
        self.tree.append(leaf_hash(canonical_line(event.to_json())))
        if self.unsigned_since is None:
            self.unsigned_since = event.ts

    def due(self, event: ev.Event | None, now: float) -> bool:
        """Whether to sign now: results announced, or an unsigned event older than interval."""
        if self.unsigned_since is None:
            return False
        return ((event is not None and publishes(event))
                or now - self.unsigned_since >= self.interval)

    def sign(self, now: float) -> str:
        """Sign the tree as it is now; the signed note."""
        checkpoint = cp.Checkpoint(self.origin, self.tree.size, self.tree.root(), int(now))
        self.note = cp.sign(checkpoint, self.key)
        self.signed_size, self.unsigned_since = self.tree.size, None
        self.notes[self.tree.size] = self.note
        return self.note

    def sign_at(self, size: int, now: float) -> str:
        """A checkpoint of the tree's first ``size`` events (a published round's log),
        signed now unless one at that size was signed before."""
        if size not in self.notes:
            if not 1 <= size <= self.tree.size:
                raise LogError(f"the tree holds {self.tree.size} events, not {size}")
            self.notes[size] = cp.sign(
                cp.Checkpoint(self.origin, size, self.tree.root(size), int(now)), self.key)
        return self.notes[size]

    def message(self) -> dict[str, Any]:
        """What the public stream carries for the latest checkpoint."""
        return {"seq": None, "type": "checkpoint",
                "data": {"size": self.signed_size, "note": self.note}}
