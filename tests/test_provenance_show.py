"""Weight provenance inside a show, over real HTTP: the operator starts a check of a
team's declared weights against a reference, its result is recorded sealed, the public
learns nothing until the operator announces it, and hostile or broken input is refused
with the log untouched (issue 18, item 5)."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from showcase.core import events as ev
from showcase.core.audit import AuditError, audit
from showcase.core.showfile import sample_show_path
from tests import provenance_models as pm
from tests.conftest import PRESENTER, Server


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    base = pm.base(1)
    pm.write(root / "ref" / "qwen", base, pm.tokenizer(1))
    # Naver's case: the vision encoder is the reference's, the language model its own.
    pm.write(root / "teams" / "naver", pm.vision_from(base, pm.base(5)), pm.tokenizer(5))
    # Upstage's case: unrelated weights whose norm scales sit tightly about 1.
    pm.write(root / "teams" / "upstage", pm.base(7, pm.Size(norm_spread=0.01)), pm.tokenizer(7))
    corrupt = pm.write(root / "teams" / "lg", pm.fine_tune(base, 2))
    with (corrupt / "model.safetensors").open("r+b") as f:
        f.truncate(f.seek(0, 2) - 1000)  # a copy cut short
    big = pm.Size(hidden=256, inter=704, layers=6, vocab=4000, v_hidden=192, v_inter=512)
    pm.write(root / "teams" / "skt", pm.fine_tune(pm.base(8, big), 9), pm.tokenizer(8))
    pm.write(root / "ref" / "big", pm.base(8, big), pm.tokenizer(8))
    # A reference whose final norm is stored as FP8, which the check cannot widen: its
    # headers are sound, so the request is accepted, and the check fails while it reads.
    write_with_fp8(root / "ref" / "fp8", base, "model.norm.weight")
    # Outside the roots: a model, and a link inside the roots that leads to it.
    outside = tmp_path_factory.mktemp("elsewhere")
    pm.write(outside / "secret", base)
    (root / "ref" / "link").symlink_to(outside / "secret")
    return root


def write_with_fp8(folder: Path, weights: pm.Weights, fp8: str) -> None:
    """A safetensors file with every tensor F32 but ``fp8``, stored as F8_E4M3 bytes."""
    folder.mkdir(parents=True)
    header: dict[str, Any] = {}
    blobs, offset = [], 0
    for name, array in weights.items():
        raw = (np.full(array.size, 0x38, dtype=np.uint8).tobytes() if name == fp8
               else np.ascontiguousarray(array, dtype=np.float32).tobytes())
        header[name] = {"dtype": "F8_E4M3" if name == fp8 else "F32",
                        "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = orjson.dumps(header)
    text += b" " * (-len(text) % 8)
    (folder / "model.safetensors").write_bytes(
        struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.fixture(scope="module")
def show(models: Path) -> Iterator[Server]:
    folder = models.parent / f"{models.name}-show"
    folder.mkdir()
    showfile = folder / "show.toml"
    showfile.write_text(sample_show_path().read_text(encoding="utf-8") + f"""
[proxy]
health_interval = 0

[provenance]
roots = ["{models}"]

[provenance.weights]
naver = "{models}/teams/naver"
upstage = "{models}/teams/upstage"
lg = "{models}/teams/lg"
skt = "{models}/teams/skt"

[provenance.references]
"Qwen2.5-VL" = "{models}/ref/qwen"
big = "{models}/ref/big"
linked = "{models}/ref/link"
fp8 = "{models}/ref/fp8"
""", encoding="utf-8")
    srv = Server(showfile, folder / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


def finished(srv: Server, check: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with srv.client() as c:
        while time.monotonic() < deadline:
            runs = {r["id"]: r for r in c.get("/api/provenance").json()["runs"]}
            if runs[check]["status"] != "running":
                return runs[check]
            time.sleep(0.1)
    raise AssertionError(f"check {check} did not finish in {timeout} s")


def public_text(srv: Server) -> str:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        return c.get("/api/state").text


def first_public_message(srv: Server, since: int) -> dict[str, Any]:
    """The message a viewer's stream carries for seq ``since + 1``."""
    with httpx.Client(base_url=srv.url, timeout=10) as c, \
            c.stream("GET", f"/events?since={since}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return orjson.loads(line[5:])  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


def test_provenance_show_copied_vision_encoder_is_sealed_until_announced(
        show: Server, models: Path) -> None:
    before = show.state()["seq"]
    started = show.post("/api/provenance", {"team": "naver", "reference": "Qwen2.5-VL"})
    assert started.status_code == 202, started.text
    run = finished(show, started.json()["check"])
    assert run["status"] == "done" and run["verdict"] == "derived", run
    seq = run["seq"]
    assert seq == before + 1

    # The operator reads the whole result: verdicts per component, figures, file hashes.
    recorded = next(c for c in show.state()["state"]["provenance"] if c["seq"] == seq)
    verdicts = {c["component"]: (c["verdict"], c["decided_by"])
                for c in recorded["components"]}
    assert verdicts["vision"] == ("derived", "exact copies")
    assert verdicts["language"] == ("independent", "no evidence of copying")
    assert recorded["announced"] is None and recorded["actor"] == "operator"
    weights = models / "teams" / "naver" / "model.safetensors"
    files = {f["name"]: f["sha256"] for f in recorded["model"]["files"]}
    assert files["model.safetensors"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert set(files) == {"model.safetensors", "config.json", "tokenizer.json"}
    assert recorded["against"]["label"] == "Qwen2.5-VL"

    # Viewers: nothing but a sealed placeholder, in the state and on the stream.
    assert "Qwen" not in public_text(show) and "derived" not in public_text(show)
    with httpx.Client(base_url=show.url, timeout=10) as c:
        assert c.get("/api/state").json()["state"]["provenance"] == []
    assert first_public_message(show, seq - 1)["type"] == "sealed"

    announced = show.post("/api/provenance/announce", {"check": seq})
    assert announced.status_code == 201, announced.text
    assert announced.json()["type"] == "provenance_announced"
    with httpx.Client(base_url=show.url, timeout=10) as c:
        finding = c.get("/api/state").json()["state"]["provenance"][0]
    vision = next(c for c in finding["components"] if c["component"] == "vision")
    assert finding["team"] == "naver" and finding["verdict"] == "derived"
    assert vision["figure_en"].startswith("100.0% of the weights identical to Qwen2.5-VL's")
    assert "기준 모델(Qwen2.5-VL)과 동일" in vision["figure_ko"]
    assert finding["model"]["files"][0]["sha256"] == files[finding["model"]["files"][0]["name"]]
    # No path on the server's machine and no evidence lines reach the public.
    assert str(models) not in public_text(show)
    assert "evidence" not in vision
    message = first_public_message(show, announced.json()["seq"] - 1)
    assert message["type"] == "provenance_announced" and message["data"]["check"] == seq

    again = show.post("/api/provenance/announce", {"check": seq})
    assert again.status_code == 409 and "announced at seq" in again.json()["error"]


def test_provenance_show_layernorm_trap_is_not_called_derived(show: Server) -> None:
    started = show.post("/api/provenance", {"team": "upstage", "reference": "Qwen2.5-VL",
                                            "component": "language"})
    assert started.status_code == 202, started.text
    run = finished(show, started.json()["check"])
    assert run["status"] == "done" and run["verdict"] == "independent", run
    recorded = next(c for c in show.state()["state"]["provenance"] if c["seq"] == run["seq"])
    language = next(c for c in recorded["components"] if c["component"] == "language")
    assert language["verdict"] == "independent"
    assert language["figures"]["trap_cosine"] > 0.99
    assert abs(language["figures"]["pearson_median"]) < 0.2
    assert "is no evidence" in language["figure_en"] and "증거가 아님" in language["figure_ko"]


def test_provenance_show_refuses_paths_outside_the_roots(show: Server, models: Path,
                                                         tmp_path: Path) -> None:
    before = show.state()["seq"]
    outside = tmp_path / "model"
    pm.write(outside, pm.base(3))
    refused = show.post("/api/provenance", {"team": "naver", "reference": str(outside)})
    assert refused.status_code == 403
    assert str(outside) in refused.json()["error"]
    assert "outside the folders allowed" in refused.json()["error"]
    # A link inside the roots that leads outside them is refused as well.
    linked = show.post("/api/provenance", {"team": "naver", "reference": "linked"})
    assert linked.status_code == 403 and "resolves to" in linked.json()["error"]
    # A path dressed up to look inside.
    dotted = show.post("/api/provenance", {"team": "naver",
                                           "reference": f"{models}/ref/../../{outside}"})
    assert dotted.status_code in (400, 403)
    missing = show.post("/api/provenance", {"team": "naver",
                                            "reference": f"{models}/ref/nothing"})
    assert missing.status_code == 400 and "no such file" in missing.json()["error"]
    unnamed = show.post("/api/provenance", {"team": "naver", "reference": "llama"})
    assert unnamed.status_code == 400 and "not a named reference" in unnamed.json()["error"]
    undeclared = show.post("/api/provenance", {"team": "ncai", "reference": "Qwen2.5-VL"})
    assert undeclared.status_code == 400 and "declared no weights" in undeclared.json()["error"]
    unknown = show.post("/api/provenance", {"team": "kakao", "reference": "Qwen2.5-VL"})
    assert unknown.status_code == 404
    presenter = show.post("/api/provenance", {"team": "naver", "reference": "Qwen2.5-VL"},
                          token=PRESENTER)
    assert presenter.status_code == 403
    assert show.state()["seq"] == before


def test_provenance_show_corrupt_file_is_refused_and_nothing_recorded(
        show: Server, models: Path) -> None:
    before = show.state()["seq"]
    refused = show.post("/api/provenance", {"team": "lg", "reference": "Qwen2.5-VL"})
    assert refused.status_code == 400
    assert str(models / "teams" / "lg" / "model.safetensors") in refused.json()["error"]
    assert "truncated" in refused.json()["error"]
    assert show.state()["seq"] == before
    with show.client() as c:
        assert all(r["team"] != "lg" for r in c.get("/api/provenance").json()["runs"])


def test_provenance_show_check_that_fails_while_reading_records_nothing(
        show: Server) -> None:
    before = show.state()["seq"]
    started = show.post("/api/provenance", {"team": "upstage", "reference": "fp8",
                                            "component": "language"})
    assert started.status_code == 202, started.text
    run = finished(show, started.json()["check"])
    assert run["status"] == "failed" and run["seq"] is None
    assert "F8_E4M3" in run["error"] and "convert the model" in run["detail"]
    assert show.state()["seq"] == before
    # The team is free again: a failed check holds nothing.
    again = show.post("/api/provenance", {"team": "upstage", "reference": "fp8",
                                          "component": "language"})
    assert again.status_code == 202
    assert finished(show, again.json()["check"])["status"] == "failed"


def test_provenance_show_one_check_per_team_at_a_time(show: Server) -> None:
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(show.post("/api/provenance", {"team": "skt", "reference": "big"}))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [202, 409]
    busy = next(a for a in answers if a.status_code == 409).json()
    assert "is running" in busy["error"] and busy["check"]
    run = finished(show, next(a for a in answers if a.status_code == 202).json()["check"])
    assert run["verdict"] == "derived"
    # Once done, the team can be checked again.
    again = show.post("/api/provenance", {"team": "skt", "reference": "big",
                                          "component": "vision", "permutation": False})
    assert again.status_code == 202
    assert finished(show, again.json()["check"])["status"] == "done"


def test_provenance_show_restart_keeps_recorded_checks_sealed(show: Server) -> None:
    """A recorded check survives a restart as it was: still sealed unless announced."""
    before = [c for c in show.state()["state"]["provenance"]]
    show.restart()
    after = show.state()["state"]["provenance"]
    assert [(c["seq"], c["verdict"], c["announced"]) for c in after] == \
        [(c["seq"], c["verdict"], c["announced"]) for c in before]
    with httpx.Client(base_url=show.url, timeout=10) as c:
        public = c.get("/api/state").json()["state"]["provenance"]
    assert [p["check"] for p in public] == [c["seq"] for c in before if c["announced"]]


def test_provenance_show_announce_refuses_an_unknown_check(show: Server) -> None:
    before = show.state()["seq"]
    refused = show.post("/api/provenance/announce", {"check": 9999})
    assert refused.status_code == 404 and "no provenance check" in refused.json()["error"]
    presenter = show.post("/api/provenance/announce", {"check": 1}, token=PRESENTER)
    assert presenter.status_code == 403
    assert show.state()["seq"] == before


def test_provenance_show_log_passes_the_audit_and_a_forged_finding_does_not(
        show: Server) -> None:
    """The recorded and the announced events re-run through their commands, as
    `showcase verify` does on an export; an announcement whose verdict was changed fails."""
    started = show.post("/api/provenance", {"team": "naver", "reference": "Qwen2.5-VL",
                                            "component": "vision", "permutation": False})
    assert started.status_code == 202, started.text
    seq = finished(show, started.json()["check"])["seq"]
    assert show.post("/api/provenance/announce", {"check": seq}).status_code == 201
    with show.client() as c:
        raw = c.get("/api/log", params={"since": 0, "limit": 5000}).json()["events"]
    events = [ev.event_from_json(e) for e in raw]
    audit(events)
    announced = next(i for i, e in enumerate(events)
                     if e.type == ev.PROVENANCE_ANNOUNCED and e.data["check"] == seq)
    forged = dataclasses.replace(events[announced],
                                 data={**events[announced].data, "verdict": "independent"})
    with pytest.raises(AuditError, match=f"seq {events[announced].seq}"):
        audit([*events[:announced], forged, *events[announced + 1:]])
