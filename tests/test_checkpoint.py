"""Signed checkpoints: the C2SP signed-note format, byte for byte with Go's reference example,
and refusals that say what is wrong."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from showcase.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_note,
    parse_verifier,
    sign,
    sign_note,
    verifier,
    verify,
)
from showcase.core.merkle import MerkleTree, leaf_hash

# golang.org/x/mod/sumdb/note's documented example: key, text and signature.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
          "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def go_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[:1] == b"\x01"
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def test_checkpoint_signed_note_matches_gos_reference_byte_for_byte() -> None:
    key = go_private_key()
    assert str(verifier("PeterNeumann", key)) == GO_VKEY
    note = sign_note(GO_TEXT, "PeterNeumann", key)
    assert note == GO_TEXT + "\n" + GO_SIG
    assert open_note(note, parse_verifier(GO_VKEY)) == GO_TEXT


def test_checkpoint_roundtrip_names_the_tree() -> None:
    key = Ed25519PrivateKey.generate()
    tree = MerkleTree(leaf_hash(b"%d" % i) for i in range(10))
    signed = sign(Checkpoint("showcase.test/r1", 10, tree.root(), time=1795536856), key)
    lines = signed.split("\n")
    assert lines[:4] == ["showcase.test/r1", "10", base64.b64encode(tree.root()).decode(),
                         "time 1795536856"]
    assert lines[4] == "" and lines[5].startswith("\u2014 showcase.test/r1 ")
    checkpoint = verify(signed, parse_verifier(str(verifier("showcase.test/r1", key))))
    assert checkpoint == Checkpoint("showcase.test/r1", 10, tree.root(), 1795536856)


def test_checkpoint_refuses_a_changed_text_another_key_or_a_bad_verifier() -> None:
    key = Ed25519PrivateKey.generate()
    vkey = verifier("showcase.test/r1", key)
    signed = sign(Checkpoint("showcase.test/r1", 10, bytes(32)), key)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify(signed.replace("\n10\n", "\n11\n", 1), vkey)
    other = verifier("showcase.test/r1", Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="no signature by"):
        verify(signed, other)
    with pytest.raises(CheckpointError, match="id does not match"):
        parse_verifier(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(CheckpointError, match="three parts"):
        parse_verifier("PeterNeumann+c74f20a3")
    with pytest.raises(CheckpointError, match="blank line"):
        verify("showcase.test/r1\n10\n", vkey)
    with pytest.raises(CheckpointError, match="root hash has 3 bytes"):
        verify(sign_note("o\n1\nAAAA\n", "o", key), verifier("o", key))
