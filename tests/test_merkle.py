"""The log's Merkle tree against RFC 6962's reference values (the Certificate Transparency
test vectors that transparency-dev/merkle and Sigstore test against), and against itself."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from showcase.core.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    canonical_line,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]


def hexes(*values: str) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


INCLUSION = {  # (leaf index, tree size): the audit path
    (0, 1): [],
    (0, 8): hexes("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    (5, 8): hexes("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    (2, 3): hexes("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    (1, 5): hexes("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
}
CONSISTENCY = {  # (old size, new size): the proof
    (1, 1): [],
    (1, 8): INCLUSION[(0, 8)],
    (6, 8): hexes("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    (2, 5): hexes("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
}


def tree() -> MerkleTree:
    return MerkleTree(leaf_hash(leaf) for leaf in LEAVES)


def test_merkle_roots_are_rfc_6962s_for_every_size() -> None:
    t = tree()
    assert t.root(0) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert [t.root(n) for n in range(1, 9)] == ROOTS
    assert t.root() == ROOTS[-1]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_merkle_inclusion_proofs_are_the_reference_ones(index: int, size: int) -> None:
    proof = tree().inclusion_proof(index, size)
    assert proof == INCLUSION[(index, size)]
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_merkle_consistency_proofs_are_the_reference_ones(old: int, new: int) -> None:
    proof = tree().consistency_proof(old, new)
    assert proof == CONSISTENCY[(old, new)]
    verify_consistency(old, new, proof, ROOTS[old - 1], ROOTS[new - 1])


def test_merkle_every_proof_of_a_larger_tree_verifies() -> None:
    leaves = [f"event {i}".encode() for i in range(70)]
    t = MerkleTree(leaf_hash(x) for x in leaves)
    for size in range(1, 71):
        root = t.root(size)
        assert root == MerkleTree(leaf_hash(x) for x in leaves[:size]).root()
        for index in range(size):
            verify_inclusion(index, size, leaf_hash(leaves[index]),
                             t.inclusion_proof(index, size), root)
        for old in range(0, size + 1):
            verify_consistency(old, size, t.consistency_proof(old, size),
                               t.root(old), root)


def test_merkle_refuses_a_changed_leaf_a_wrong_index_or_a_rewritten_history() -> None:
    t = tree()
    proof = t.inclusion_proof(5, 8)
    with pytest.raises(ProofError, match="another root"):
        verify_inclusion(5, 8, leaf_hash(b"forged"), proof, ROOTS[7])
    with pytest.raises(ProofError, match="another root"):
        verify_inclusion(4, 8, leaf_hash(LEAVES[5]), proof, ROOTS[7])
    with pytest.raises(ProofError, match="not in a tree"):
        verify_inclusion(8, 8, leaf_hash(LEAVES[5]), proof, ROOTS[7])
    with pytest.raises(ProofError, match="shorter"):
        verify_inclusion(5, 8, leaf_hash(LEAVES[5]), proof[:-1], ROOTS[7])
    rewritten = MerkleTree(leaf_hash(x) for x in [b"changed", *LEAVES[1:]])
    with pytest.raises(ProofError, match="rewritten"):
        verify_consistency(6, 8, rewritten.consistency_proof(6, 8), ROOTS[5], rewritten.root())
    with pytest.raises(ProofError, match="same root"):
        verify_consistency(3, 3, [], ROOTS[2], ROOTS[3])
    with pytest.raises(ProofError, match="leaves"):
        t.inclusion_proof(0, 9)


def test_merkle_proofs_are_logarithmic() -> None:
    t = MerkleTree(leaf_hash(i.to_bytes(4, "big")) for i in range(5000))
    assert max(len(t.inclusion_proof(i, 5000)) for i in range(0, 5000, 97)) <= 13
    assert len(t.consistency_proof(1234, 5000)) <= 2 * 13


def test_merkle_canonical_line_sorts_keys_at_every_depth_and_keeps_utf8() -> None:
    event = {"seq": 3, "ts": 1.5, "type": "team_added", "actor": "operator:김지원",
             "data": {"team": {"name_ko": "엘지", "id": "lg"}, "b": [1, 2.0], "a": None}}
    line = canonical_line(event)
    assert line == ('{"actor":"operator:김지원","data":{"a":null,"b":[1,2.0],'
                    '"team":{"id":"lg","name_ko":"엘지"}},"seq":3,"ts":1.5,'
                    '"type":"team_added"}').encode()
    reordered = dict(itertools.islice(reversed(list(event.items())), None))
    assert canonical_line(reordered) == line
    assert node_hash(leaf_hash(line), leaf_hash(line)) != leaf_hash(line + line)
