"""The log as a Merkle tree, in the sense of RFC 6962 (Certificate Transparency) and RFC 9162.

A leaf's hash is SHA-256(0x00 || leaf bytes), an inner node's SHA-256(0x01 || left || right),
and the tree over n leaves splits at the largest power of two below n. The leaf bytes of an
event are its canonical line (``canonical_line``): anyone can recompute the root from an
export with a few lines of code in any language, and check an inclusion or a consistency
proof against a signed checkpoint.

``MerkleTree`` keeps the hash of every complete subtree, level by level, so appending costs
one leaf hash and, on average, one node hash, and the root of any earlier size or a proof
is O(log n) hashes of what is kept. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # the root of a tree with no leaves (RFC 9162)


class ProofError(ValueError):
    """A proof does not prove what it claims; the message says which check failed."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical_line(event: dict[str, Any]) -> bytes:
    """An event's line in ``events.ndjson`` (without the newline), and its leaf bytes.

    The public contract: a JSON object with the keys ``actor``, ``data``, ``seq``, ``ts`` and
    ``type``; every object's keys sorted by code point, at every depth; no whitespace;
    UTF-8, with characters outside ASCII written as themselves; integers in decimal; other
    numbers in their shortest form that reads back to the same double (orjson's). Both logs,
    SQLite and Redis Streams, give the same line for the same event.
    """
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaf hashes with every complete subtree's hash kept."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # levels[k][i]: the hash of leaves [i * 2**k, (i + 1) * 2**k), complete subtrees only
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, h: bytes) -> int:
        """Add a leaf's hash; returns its index."""
        levels = self.levels
        levels[0].append(h)
        k = 0
        while len(levels[k]) % 2 == 0:
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(node_hash(levels[k][-2], levels[k][-1]))
            k += 1
        return len(levels[0]) - 1

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end): a kept hash when complete, else built from kept ones."""
        n = end - start
        if n & (n - 1) == 0:  # a complete subtree; RFC 6962's splits keep it aligned
            k = n.bit_length() - 1
            return self.levels[k][start >> k]
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"the tree has {self.size} leaves, not {size}")

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree over the first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._subtree(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]): the hashes that lead from leaf ``index`` to the root."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """PROOF(old, D[new]): what shows the tree of ``new`` leaves extends that of ``old``."""
        self._check_size(new)
        if not 0 <= old <= new:
            raise ProofError(f"a tree of {old} leaves cannot be a prefix of one of {new}")
        if old in (0, new):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, new, True
        while True:
            n = end - start
            if old - start == n:
                if not whole:
                    proof.append(self._subtree(start, end))
                break
            k = _split(n)
            if old - start <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, whole = start + k, False
        proof.reverse()
        return proof


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """RFC 9162, 2.1.3.2: raises ProofError unless ``leaf`` (a leaf hash) is at ``index`` in
    the tree of ``size`` leaves whose root is ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("the inclusion proof leads to another root: the leaf is not in "
                         "this tree, or the tree is not the one signed")


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> None:
    """RFC 9162, 2.1.4.2: raises ProofError unless the tree of ``new`` leaves with root
    ``new_root`` extends the tree of ``old`` leaves with root ``old_root`` (was only
    appended to)."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {old} leaves cannot be a prefix of one of {new}")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("two trees of the same size must have the same root")
        return
    if old == 0:
        if proof:
            raise ProofError("the empty tree is a prefix of every tree: its proof is empty")
        return
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != old_root:
        raise ProofError(f"the first {old} leaves of the new tree are not the old tree: "
                         "the log was rewritten, not appended to")
    if sr != new_root:
        raise ProofError("the consistency proof leads to another root than the new one")
