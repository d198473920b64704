"""Signed checkpoints: the log's size and root, signed with the show's Ed25519 key.

The text is a C2SP ``tlog-checkpoint`` inside a C2SP ``signed-note``, so tools written for
Go's sumdb and Sigstore's logs read it::

    showcase.example/r1-final
    1024
    <the root hash, base64>
    time 1795536856

    — showcase.example/r1-final <base64 of key id (4 bytes) and signature (64 bytes)>

The first three lines are the origin (which log), the tree size and the root; further lines
before the blank one are extensions (here, the time of signing, Unix seconds). The signature
covers the text up to and including the blank line's preceding newline; the key id is the
first four bytes of SHA-256(name, "\\n", 0x01, public key). A verifier key is written
``name+hex key id+base64(0x01, public key)``.

Pure: signing takes a key object and the time from the caller; no file, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from showcase.core.merkle import HASH_SIZE

ED25519 = b"\x01"  # the signed-note signature type of Ed25519
DASH = "\u2014"  # the em dash that starts every signature line
_NAME = re.compile(r"^[^\s+]{1,255}$")


class CheckpointError(ValueError):
    """A checkpoint is malformed, or its signature does not verify; the message says which."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: int | None = None

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        if self.time is not None:
            lines.append(f"time {self.time}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class VerifierKey:
    name: str
    key_id: bytes
    public: Ed25519PublicKey

    def __str__(self) -> str:
        raw = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519 + raw).decode()}"


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw).digest()[:4]


def verifier(name: str, private: Ed25519PrivateKey) -> VerifierKey:
    """The public half of ``private`` under ``name``, as a verifier key."""
    _check_name(name)
    public = private.public_key()
    return VerifierKey(name, key_id(name, public), public)


def parse_verifier(text: str) -> VerifierKey:
    """Read ``name+hex key id+base64 key``; refuses a key whose id does not match it."""
    parts = text.strip().split("+", 2)  # base64 may hold "+", a name and an id never do
    if len(parts) != 3:
        raise CheckpointError("a verifier key reads name+keyid+key (three parts joined by +)")
    name, hex_id, b64 = parts
    _check_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"the verifier key is not hex and base64: {exc}") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise CheckpointError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public) != wanted:
        raise CheckpointError("the verifier key's id does not match its name and key")
    return VerifierKey(name, wanted, public)


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """A signed note: ``text`` (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n") or "\n\n" in text:
        raise CheckpointError("a note's text ends with a newline and has no blank line")
    key = verifier(name, private)
    signature = private.sign(text.encode())
    return f"{text}\n{DASH} {name} {base64.b64encode(key.key_id + signature).decode()}\n"


def sign(checkpoint: Checkpoint, private: Ed25519PrivateKey) -> str:
    """The checkpoint as a note signed under its origin's name."""
    return sign_note(checkpoint.body(), checkpoint.origin, private)


def open_note(note: str, key: VerifierKey) -> str:
    """The note's text, if ``key`` signed it; else CheckpointError saying why."""
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise CheckpointError("a signed note has its text, a blank line, then signatures")
    sigs = _signatures(signatures)
    mine = [sig for name, kid, sig in sigs if name == key.name and kid == key.key_id]
    if not mine:
        raise CheckpointError(f"the note carries no signature by {key.name} "
                              f"(key id {key.key_id.hex()})")
    for signature in mine:
        try:
            key.public.verify(signature, (text + "\n").encode())
        except InvalidSignature:
            continue
        return text + "\n"
    raise CheckpointError("the signature does not verify: the text was changed after it "
                          "was signed, or another key signed it")


def parse(text: str) -> Checkpoint:
    """A checkpoint's text (origin, size, root, extensions), read but not verified."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint starts with three lines: origin, size, root hash")
    origin, size_text, root_text, *extensions = lines
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"the tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("the root hash is not base64") from None
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"the root hash has {len(root)} bytes, not {HASH_SIZE}")
    time = None
    for line in extensions:
        key, _, value = line.partition(" ")
        if key == "time" and value.isdigit():
            time = int(value)
    return Checkpoint(origin, int(size_text), root, time)


def verify(note: str, key: VerifierKey) -> Checkpoint:
    """The checkpoint, if ``key`` signed this very text; else CheckpointError saying why."""
    return parse(open_note(note, key))


def _signatures(block: str) -> list[tuple[str, bytes, bytes]]:
    sigs = []
    for line in block.rstrip("\n").split("\n"):
        found = re.fullmatch(rf"{DASH} (\S+) (\S+)", line)
        if not found:
            raise CheckpointError(f"not a signature line: {line[:60]!r}")
        try:
            blob = base64.b64decode(found.group(2), validate=True)
        except binascii.Error:
            raise CheckpointError("a signature is not base64") from None
        if len(blob) < 5:
            raise CheckpointError("a signature is too short")
        sigs.append((found.group(1), blob[:4], blob[4:]))
    return sigs


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise CheckpointError(f"a key name is 1 to 255 characters, no spaces or '+': {name!r}")
