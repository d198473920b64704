"""The weight-provenance check on models the tests write: each case gets the right verdict
per component, and bad input gets an error that names the file and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from showcase.provenance.check import DERIVED, INCONCLUSIVE, INDEPENDENT, Report, check
from showcase.provenance.errors import ProvenanceError
from tests import provenance_models as pm

SEED = 1


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    base = pm.base(SEED)
    tok = pm.tokenizer(SEED)
    return {
        "base": pm.write(root / "base", base, tok),
        "copy": pm.write(root / "copy", base, tok),
        "fine-tune": pm.write(root / "fine-tune", pm.fine_tune(base, 2), tok),
        "permuted": pm.write(root / "permuted", pm.permuted(base, 3), tok),
        "independent": pm.write(root / "independent", pm.base(4), pm.tokenizer(4)),
        "vision-copied": pm.write(root / "vision-copied", pm.vision_from(base, pm.base(5)),
                                  pm.tokenizer(5)),
        "renamed": pm.write(root / "renamed", pm.renamed(base)),
        "sharded": pm.write(root / "sharded", pm.fine_tune(base, 6), tok, shards=3, bf16=True),
        # Unrelated weights with norm scales packed tightly about 1: raw cosine ~0.99+.
        "layernorm-trap": pm.write(root / "layernorm-trap", pm.base(7, pm.Size(norm_spread=0.01))),
    }


def verdicts(report: Report) -> dict[str, tuple[str, str]]:
    return {c.component: (c.verdict, c.decided_by) for c in report.components}


def component(report: Report, name: str):  # type: ignore[no-untyped-def]
    return next(c for c in report.components if c.component == name)


def test_provenance_identical_model_is_derived_by_exact_copies(models: dict[str, Path]) -> None:
    report = check(models["copy"], models["base"])
    assert verdicts(report) == {"vision": (DERIVED, "exact copies"),
                                "language": (DERIVED, "exact copies"),
                                "embeddings": (DERIVED, "exact copies"),
                                "tokenizer": (DERIVED, "merges")}
    vision = component(report, "vision")
    assert vision.exact_copies == vision.tensors_a == 23 and vision.copied_share == 1.0
    assert "23 of 23" in vision.en and "23개" in vision.ko


def test_provenance_fine_tune_is_derived_by_correlation(models: dict[str, Path]) -> None:
    report = check(models["fine-tune"], models["base"])
    assert verdicts(report) == {"vision": (DERIVED, "correlation"),
                                "language": (DERIVED, "correlation"),
                                "embeddings": (DERIVED, "correlation"),
                                "tokenizer": (DERIVED, "merges")}
    language = component(report, "language")
    assert language.exact_copies == 0
    assert all(t.correlated and t.pearson > 0.98 for t in language.compared)
    # Unrelated layers of the same two models correlate at ~0, far below the matched pairs.
    assert all(abs(t.pearson_null.mean) < 2 * t.pearson_null.sd and t.pearson_null.pairs >= 3
               and t.pearson_null.z > 6 for t in language.compared)


def test_provenance_reordered_hidden_units_are_found_by_the_permutation_test(
        models: dict[str, Path]) -> None:
    report = check(models["permuted"], models["base"])
    assert verdicts(report)["vision"] == (DERIVED, "permutation test")
    assert verdicts(report)["language"] == (DERIVED, "permutation test")
    language = component(report, "language")
    # Name by name the reordered copy looks unrelated: only the matching finds it.
    assert not any(t.correlated for t in language.compared)
    assert language.permutation is not None
    assert [t.rho for t in language.permutation.layers] == [1.0] * 4
    assert language.permutation.anchor == "model.embed_tokens.weight"
    assert "reordered" in language.en and "뉴런 순서" in language.ko
    # Without the permutation test the check is a quicker screen, and blind to this copy.
    screen = check(models["permuted"], models["base"], permutation=False)
    assert verdicts(screen)["language"] == (INDEPENDENT, "no evidence of copying")
    assert component(screen, "language").permutation is None


def test_provenance_independent_model_is_independent(models: dict[str, Path]) -> None:
    report = check(models["independent"], models["base"])
    assert verdicts(report) == {"vision": (INDEPENDENT, "no evidence of copying"),
                                "language": (INDEPENDENT, "no evidence of copying"),
                                "embeddings": (INDEPENDENT, "no evidence of copying"),
                                "tokenizer": (INDEPENDENT, "vocabulary")}
    language = component(report, "language")
    assert language.permutation is not None and language.permutation.p > 0.01
    assert "No sign" in language.en and "흔적이 없습니다" in language.ko


def test_provenance_copied_vision_encoder_with_own_language_model(
        models: dict[str, Path]) -> None:
    """The disqualification case: derived for vision, independent for language."""
    report = check(models["vision-copied"], models["base"])
    assert verdicts(report)["vision"] == (DERIVED, "exact copies")
    assert verdicts(report)["language"] == (INDEPENDENT, "no evidence of copying")
    assert verdicts(report)["embeddings"] == (INDEPENDENT, "no evidence of copying")
    vision_only = check(models["vision-copied"], models["base"], component="vision")
    assert verdicts(vision_only) == {"vision": (DERIVED, "exact copies")}
    language_only = check(models["vision-copied"], models["base"], component="language")
    assert set(verdicts(language_only)) == {"language", "embeddings", "tokenizer"}


def test_provenance_layernorm_trap_is_not_called_derived(models: dict[str, Path]) -> None:
    report = check(models["layernorm-trap"], models["base"])
    language = component(report, "language")
    norms = [t for t in language.compared if "layernorm" in t.name]
    assert len(norms) == 8
    assert all(t.cosine > 0.99 for t in norms)  # what the accusation rested on
    assert all(abs(t.pearson) < 0.5 and not t.correlated for t in norms)
    assert all(t.cosine_null.mean > 0.99 for t in norms)  # unrelated pairs score the same
    assert language.verdict == INDEPENDENT
    assert any("layernorm" in line and "no evidence" in line for line in language.evidence)


def test_provenance_constant_tensors_are_not_copies(tmp_path: Path) -> None:
    """Zero biases are byte-identical in any two models that have them: no evidence."""
    zeros = {f"model.layers.{n}.self_attn.q_proj.bias": np.zeros(64, np.float32)
             for n in range(4)}
    a = pm.write(tmp_path / "a", pm.base(4) | zeros)
    b = pm.write(tmp_path / "b", pm.base(SEED) | zeros)
    language = component(check(a, b, component="language"), "language")
    assert language.verdict == INDEPENDENT
    assert language.exact_copies == 0 and language.tensors_a == 37


def test_provenance_renamed_copy_is_found_by_hashes(models: dict[str, Path]) -> None:
    report = check(models["renamed"], models["base"])
    for name in ("vision", "language", "embeddings"):
        assert verdicts(report)[name] == (DERIVED, "exact copies")
    language = component(report, "language")
    assert ("transformer.h.0.mlp.w3.weight", "model.layers.0.mlp.up_proj.weight") in \
        language.renamed_copies
    assert any("copied under another name" in line for line in language.evidence)


def test_provenance_sharded_bf16_model_is_read_whole(models: dict[str, Path]) -> None:
    report = check(models["sharded"], models["base"])
    for name in ("vision", "language", "embeddings"):
        assert verdicts(report)[name] == (DERIVED, "correlation")
    # BF16 keeps ~3 significant digits: the fine-tune still correlates at ~0.995.
    assert all(t.pearson > 0.98 for t in component(report, "language").compared)
    assert component(report, "vision").tensors_a == 23  # tensors from all three shards


def test_provenance_extended_vocabulary_is_compared_on_the_shared_rows(
        tmp_path: Path) -> None:
    """A fine-tune whose vocabulary was extended (100 new tokens, say Korean ones): its
    embeddings and output head are compared on the 600 rows both models have."""
    base = pm.base(SEED)
    extended = pm.fine_tune(base, 2)
    rng = np.random.default_rng(3)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        new_rows = (rng.standard_normal((100, 64)) / 8).astype(np.float32)
        extended[name] = np.concatenate([extended[name], new_rows])
    report = check(pm.write(tmp_path / "extended", extended), pm.write(tmp_path / "base", base))
    embeddings = component(report, "embeddings")
    assert embeddings.verdict == DERIVED and embeddings.decided_by == "correlation"
    assert [(t.shape, t.rows_only) for t in embeddings.compared] == [([600, 64], 600)] * 2
    assert any("first 600 rows only" in line for line in embeddings.evidence)
    language = component(report, "language")
    assert language.verdict == DERIVED
    assert language.permutation is not None
    assert language.permutation.anchor == "model.embed_tokens.weight"


def test_provenance_reference_without_a_vision_tower_is_inconclusive_for_vision(
        tmp_path: Path, models: dict[str, Path]) -> None:
    text_only = {k: v for k, v in pm.base(8).items() if not k.startswith("visual.")}
    reference = pm.write(tmp_path / "text-only", text_only)
    report = check(models["base"], reference)
    assert component(report, "vision").verdict == INCONCLUSIVE
    assert "nothing to compare" in component(report, "vision").decided_by
    assert component(report, "language").verdict == INDEPENDENT


def test_provenance_reports_progress_over_every_byte(models: dict[str, Path]) -> None:
    seen: list[tuple[int, int]] = []
    report = check(models["fine-tune"], models["base"], progress=lambda d, t: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[0][0] == 0
    assert seen[-1][0] == seen[-1][1] == report.bytes_read
    assert report.bytes_read == 2 * sum(f.stat().st_size - _header_size(f)
                                        for f in models["base"].glob("*.safetensors"))


def _header_size(file: Path) -> int:
    return 8 + int.from_bytes(file.read_bytes()[:8], "little")


def test_provenance_tokenizer_sharing_part_of_the_vocabulary_is_inconclusive(
        tmp_path: Path, models: dict[str, Path]) -> None:
    """Independent tokenizers share their first merges; a copy shares nearly all. Between
    the two the check says it cannot tell."""
    ours, other = pm.tokenizer(SEED), pm.tokenizer(9)
    kept = list(ours["model"]["vocab"])[:500]  # type: ignore[index]
    vocab = dict.fromkeys(kept) | {t: None for t in other["model"]["vocab"]  # type: ignore[index]
                                   if t not in kept}
    mixed = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(list(vocab)[:600])},
                       "merges": [[*m.split(" ")] for m in  # the newer list form of a merge
                                  ours["model"]["merges"][:460]  # type: ignore[index]
                                  + other["model"]["merges"][:100]]}}  # type: ignore[index]
    model = pm.write(tmp_path / "mixed", pm.base(SEED), mixed)
    tokenizer = component(check(model, models["base"], component="language"), "tokenizer")
    assert tokenizer.verdict == INCONCLUSIVE
    assert tokenizer.tokenizer is not None and 0.5 < tokenizer.tokenizer.vocab_overlap < 0.9
    assert 0.5 < (tokenizer.tokenizer.merge_overlap or 0) < 0.9
    assert "does not show copying" in tokenizer.en and "볼 수 없습니다" in tokenizer.ko


# --- bad input -----------------------------------------------------------------------------

def test_provenance_truncated_file_is_named(tmp_path: Path, models: dict[str, Path]) -> None:
    broken = pm.write(tmp_path / "truncated", pm.base(SEED))
    file = broken / "model.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(ProvenanceError, match=r"model\.safetensors is truncated: .* ends at"):
        check(broken, models["base"])


def test_provenance_corrupt_header_is_named(tmp_path: Path, models: dict[str, Path]) -> None:
    broken = pm.write(tmp_path / "corrupt", pm.base(SEED))
    file = broken / "model.safetensors"
    raw = bytearray(file.read_bytes())
    raw[8:40] = b"\x00garbage-not-json\xff" + b"#" * 14
    file.write_bytes(bytes(raw))
    with pytest.raises(ProvenanceError, match=r"model\.safetensors: corrupt: its header is not"):
        check(models["base"], broken)


def test_provenance_corrupt_values_are_named(tmp_path: Path, models: dict[str, Path]) -> None:
    weights = pm.base(SEED)
    weights["model.layers.2.mlp.up_proj.weight"][3, 5] = np.nan
    broken = pm.write(tmp_path / "nan", weights)
    with pytest.raises(ProvenanceError, match=r"model\.layers\.2\.mlp\.up_proj\.weight holds "
                                              r"NaN or infinite values"):
        check(broken, models["base"])


def test_provenance_missing_shard_and_missing_model_are_named(
        tmp_path: Path, models: dict[str, Path]) -> None:
    sharded = pm.write(tmp_path / "sharded", pm.base(SEED), shards=2)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ProvenanceError, match=r"names model-00002-of-00002\.safetensors, "
                                              "which is missing"):
        check(sharded, models["base"])
    with pytest.raises(ProvenanceError, match=r"nowhere: no such file or directory"):
        check(tmp_path / "nowhere", models["base"])


def test_provenance_shape_mismatch_is_an_error(tmp_path: Path, models: dict[str, Path]) -> None:
    bigger = pm.write(tmp_path / "bigger", pm.base(SEED, pm.Size(hidden=96, v_hidden=32)))
    with pytest.raises(ProvenanceError, match=r"shape mismatch: \S+ is \[\d+(, \d+)*\] in .*"
                                              r"no tensor of the same name has the same shape"):
        check(bigger, models["base"])


def test_provenance_nothing_comparable_is_an_error(tmp_path: Path,
                                                   models: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    other = pm.write(tmp_path / "other", {"transformer.wte.weight":
                                          rng.standard_normal((7, 5)).astype(np.float32)})
    with pytest.raises(ProvenanceError, match="nothing comparable"):
        check(models["base"], other, component="language")


# --- the command line ----------------------------------------------------------------------

def _showcase(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "showcase", "provenance", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_provenance_command_prints_verdicts_in_both_languages(models: dict[str, Path]) -> None:
    done = _showcase(str(models["vision-copied"]), str(models["base"]))
    assert done.returncode == 0, done.stderr
    assert "vision encoder: DERIVED (exact copies)" in done.stdout
    assert "language model: INDEPENDENT (no evidence of copying)" in done.stdout
    assert "KO  비전 인코더는 기준 모델에서 복사되었습니다" in done.stdout
    as_json = _showcase(str(models["permuted"]), str(models["base"]), "--component", "vision",
                        "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = orjson.loads(as_json.stdout)
    assert [(c["component"], c["verdict"]) for c in report["components"]] == \
        [("vision", "derived")]
    assert report["components"][0]["permutation"]["layers"][0]["rho"] == 1.0


def test_provenance_command_fails_with_one_line_naming_the_file(
        tmp_path: Path, models: dict[str, Path]) -> None:
    broken = pm.write(tmp_path / "truncated", pm.base(SEED))
    file = broken / "model.safetensors"
    file.write_bytes(file.read_bytes()[:1000])
    done = _showcase(str(broken), str(models["base"]))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(file) in lines[0], done.stderr


def test_provenance_command_shows_progress_for_a_large_model(tmp_path: Path) -> None:
    """Over 64 MiB to read: a bar on stderr (a line per tenth when stderr is no terminal),
    and nothing of it on stdout, which stays the report."""
    size = pm.Size(hidden=256, inter=704, vocab=16000, layers=6)
    base = pm.base(SEED, size)
    a = pm.write(tmp_path / "a", base)
    b = pm.write(tmp_path / "b", pm.fine_tune(base, 2))
    done = _showcase(str(a), str(b), "--component", "language")
    assert done.returncode == 0, done.stderr
    bars = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(bars) >= 5 and bars[-1].startswith("[" + "#" * 28 + "]"), done.stderr
    assert "GiB" in bars[-1] and "[#" not in done.stdout
    assert "language model: DERIVED (correlation)" in done.stdout


def test_provenance_numerics_load_only_when_a_check_runs() -> None:
    """Every ``showcase`` command builds the provenance options; only a check pays for
    numpy, scipy and safetensors (``showcase serve`` starts without them)."""
    code = ("import contextlib, io, sys\n"
            "from showcase.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['provenance', '--help'])\n"
            "print(sorted({'numpy', 'scipy', 'safetensors'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
