"""`showcase verify` and `showcase import` on a real server's export: a genuine log verifies,
every kind of tampering is refused with the line and the reason, and nothing is imported."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from showcase.cli import main
from showcase.core.checkpoint import Checkpoint, sign, verifier
from showcase.core.merkle import MerkleTree, canonical_line, leaf_hash
from tests.conftest import Server, score_sample_round


@pytest.fixture
def export(server: Server, tmp_path: Path) -> Path:
    """A round scored, one team disqualified, the round published, a correction refused
    after it; the export of that."""
    score_sample_round(server)
    server.post("/api/teams/naver/disqualify", {"reason": "weights"}).raise_for_status()
    server.post("/api/rounds/r1/publish").raise_for_status()
    out = tmp_path / "export"
    assert main(["export", "--data", str(server.data), "--out", str(out)]) == 0
    return out


def lines(export: Path) -> list[bytes]:
    return (export / "events.ndjson").read_bytes().splitlines()


def write(export: Path, rows: list[bytes]) -> Path:
    (export / "events.ndjson").write_bytes(b"".join(r + b"\n" for r in rows))
    return export / "events.ndjson"


def edit(line: bytes, **data: object) -> bytes:
    event = orjson.loads(line)
    event["data"].update(data)
    return canonical_line(event)


def index_of(rows: list[bytes], event_type: str, **match: object) -> int:
    for i, row in enumerate(rows):
        event = orjson.loads(row)
        if event["type"] == event_type and all(event["data"].get(k) == v
                                               for k, v in match.items()):
            return i
    raise AssertionError(f"no {event_type} {match}")


def verify(export: Path, *extra: str) -> int:
    return main(["verify", str(export / "events.ndjson"), *extra])


def test_verify_a_genuine_export(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = lines(export)
    assert all(canonical_line(orjson.loads(r)) == r for r in rows)  # the leaves, as defined
    assert verify(export) == 0
    out = capsys.readouterr().out
    root = base64.b64encode(MerkleTree(leaf_hash(r) for r in rows).root()).decode()
    assert f"tree root over all {len(rows)}: {root}" in out
    assert "standings of 2 round(s) re-folded from the log match standings.json" in out
    assert "round r1: published; eliminated: " in out and "verified" in out


@pytest.mark.parametrize(("tamper", "message"), [
    ("value", "out of range"),
    # A legal value, changed: the publication the log records no longer follows from it.
    ("changed", "round_published differs from what its command records: field 'standings'"),
    ("removed", "are missing: the log has a gap"),
    ("duplicate", "duplicate seq"),
    ("after", "is published"),
    ("extra", "'note' is not one the command records"),
])
def test_verify_and_import_refuse_a_tampered_export(
        export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: str,
        message: str) -> None:
    rows = lines(export)
    i = index_of(rows, "score_entered", team="lg", criterion="benchmark")
    if tamper == "value":
        rows[i] = edit(rows[i], value=1e9)
    elif tamper == "changed":
        rows[i] = edit(rows[i], value=55.0)
    elif tamper == "removed":
        del rows[i]
    elif tamper == "duplicate":
        rows.insert(i, rows[i])
    elif tamper == "extra":
        rows[i] = edit(rows[i], note="quietly")
    else:
        forged = orjson.loads(rows[i])
        forged["seq"] = len(rows) + 1
        rows.append(canonical_line(forged))
    log = write(export, rows)
    (export / "standings.json").unlink()  # the log alone must give the problem away
    assert verify(export) == 2
    err = capsys.readouterr().err
    assert f"{log}:" in err and message in err, err
    fresh = tmp_path / "imported"
    assert main(["import", str(log), "--data", str(fresh)]) == 2
    assert message in capsys.readouterr().err
    assert not (fresh / "events.sqlite3").exists()


def test_verify_against_a_signed_checkpoint(export: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = lines(export)
    key = Ed25519PrivateKey.generate()
    size = len(rows) - 2
    signed = sign(Checkpoint("showcase.test/r1", size,
                             MerkleTree(leaf_hash(r) for r in rows).root(size), 1795536856), key)
    note = tmp_path / "checkpoint.txt"
    note.write_text(signed, encoding="utf-8")
    vkey = str(verifier("showcase.test/r1", key))
    assert verify(export, "--checkpoint", str(note), "--key", vkey) == 0
    assert f"signed checkpoint 'showcase.test/r1' at size {size}: signature good" in (
        capsys.readouterr().out)

    other = str(verifier("showcase.test/r1", Ed25519PrivateKey.generate()))
    assert verify(export, "--checkpoint", str(note), "--key", other) == 2
    assert "no signature by showcase.test/r1" in capsys.readouterr().err

    note.write_text(signed.replace(f"\n{size}\n", f"\n{size - 1}\n"), encoding="utf-8")
    assert verify(export, "--checkpoint", str(note), "--key", vkey) == 2
    assert "the signature does not verify" in capsys.readouterr().err

    note.write_text(signed, encoding="utf-8")
    swapped = [*rows]
    swapped[3], swapped[4] = swapped[4], swapped[3]
    write(export, swapped)
    assert verify(export, "--checkpoint", str(note), "--key", vkey) == 2
    assert f"the export's first {size} events do not give the signed root" in (
        capsys.readouterr().err)
    write(export, rows[:size - 1])
    assert verify(export, "--checkpoint", str(note), "--key", vkey) == 2
    assert "events were removed" in capsys.readouterr().err


def test_verify_refuses_standings_that_the_log_does_not_give(
        export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    standings = orjson.loads((export / "standings.json").read_bytes())
    rows = standings["rounds"][0]["published"]["rows"]
    rows[0], rows[1] = rows[1], rows[0]
    (export / "standings.json").write_bytes(orjson.dumps(standings))
    assert verify(export) == 2
    assert "round 'r1': its published differ from what the log folds to" in (
        capsys.readouterr().err)
