"""A check's report as the show records it: verdicts, key figures, a line per figure in
Korean and English, and the files compared with their SHA-256 (the data of a
``provenance_checked`` event, core/findings.py).

The figure line is what the overlay card and the presenter read ("99.6% of the weights
identical to Qwen2.5-VL's"); it names the figure that decided the verdict, and for a
verdict of independence the raw cosine that is no evidence (the LayerNorm trap) beside the
centred correlation that is.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from pathlib import Path
from typing import Any

from showcase.core.findings import overall
from showcase.provenance import stats as st
from showcase.provenance.check import LINED_UP_P, ComponentReport, Report
from showcase.provenance.weights import model_files

#: A raw cosine at least this high, where the centred correlation shows nothing, is named
#: on the card as no evidence.
TRAP_COSINE = 0.9
HASH_BLOCK = 4 * 2**20


def sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def side(path: Path, label: str, declared: dict[str, Any]) -> dict[str, Any]:
    """One model compared: where it is (the operator's to read), what it is called on air,
    what its config declares, and each file's name, size and SHA-256."""
    files = [{"name": str(f.relative_to(path)) if path.is_dir() else f.name,
              "bytes": f.stat().st_size, "sha256": sha256_of(f)} for f in model_files(path)]
    return {"path": str(path), "label": label, "declared": declared, "files": files}


def finding(report: Report, team: str, reference: str, component: str,
            model: dict[str, Any], against: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The event data of a finished check (``model`` and ``against`` from ``side``)."""
    label = against["label"]
    components = [_component(c, label) for c in report.components]
    return {"team": team, "reference": reference, "component": component,
            "verdict": overall([c["verdict"] for c in components]),
            "model": model, "against": against, "components": components,
            "bytes_read": report.bytes_read, "seconds": round(seconds, 2)}


def _component(c: ComponentReport, label: str) -> dict[str, Any]:
    figures = _figures(c)
    en, ko = _figure_line(c, figures, label)
    return {"component": c.component, "verdict": c.verdict, "decided_by": c.decided_by,
            "figures": figures, "figure_en": en, "figure_ko": ko, "en": c.en, "ko": c.ko,
            "evidence": c.evidence}


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _figures(c: ComponentReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.tokenizer is not None:
        t = c.tokenizer
        return {"vocab_overlap": _num(t.vocab_overlap), "same_ids": _num(t.same_ids),
                "merge_overlap": _num(t.merge_overlap)}
    out |= {"tensors": c.tensors_a, "exact_copies": c.exact_copies,
            "copied_share": _num(c.copied_share)}
    if c.compared:
        out |= {"compared": len(c.compared),
                "correlated": sum(t.correlated for t in c.compared),
                "pearson_median": _num(statistics.median(t.pearson for t in c.compared)),
                "null_median": _num(statistics.median(t.pearson_null.mean
                                                      for t in c.compared)),
                "cosine_median": _num(statistics.median(t.cosine for t in c.compared)),
                "cosine_max": _num(max(t.cosine for t in c.compared))}
        trap = [t for t in c.compared if t.cosine >= TRAP_COSINE and not t.correlated]
        if trap:
            worst = max(trap, key=lambda t: t.cosine)
            out |= {"trap_cosine": _num(worst.cosine), "trap_pearson": _num(worst.pearson)}
    if c.permutation is not None:
        p = c.permutation
        out |= {"permutation_p": _num(p.p, 12), "layers": len(p.layers),
                "layers_lined_up": sum(t.p <= LINED_UP_P for t in p.layers)}
    return out


def _fixed(value: float, digits: int) -> str:
    """``value`` to ``digits`` places, never "-0.00" (a figure a viewer would misread)."""
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _figure_line(c: ComponentReport, f: dict[str, Any], label: str) -> tuple[str, str]:
    """The one figure a viewer needs, in English and Korean."""
    ref_en, ref_ko = f"{label}'s", f"기준 모델({label})"
    if c.tokenizer is not None:
        return (f"{f['vocab_overlap']:.0%} of the vocabulary shared with {ref_en}",
                f"어휘의 {f['vocab_overlap']:.0%}가 {ref_ko}과 겹침")
    r = f.get("pearson_median")
    corr_en = f"; centred correlation {_fixed(r, 3)}" if r is not None else ""
    corr_ko = f"; 중심화 상관계수 {_fixed(r, 3)}" if r is not None else ""
    if c.decided_by == "exact copies":
        return (f"{c.copied_share:.1%} of the weights identical to {ref_en} ({c.exact_copies} "
                f"of {c.tensors_a} tensors byte for byte){corr_en}",
                f"가중치의 {c.copied_share:.1%}가 {ref_ko}과 동일 (텐서 {c.tensors_a}개 중 "
                f"{c.exact_copies}개가 바이트 단위로 일치){corr_ko}")
    if c.decided_by == "permutation test" and c.permutation is not None:
        lined, layers = f["layers_lined_up"], f["layers"]
        return (f"the same as {ref_en} once its neurons are put back in order: {lined} of "
                f"{layers} layers line up ({st.p_text(c.permutation.p)})",
                f"뉴런 순서를 되돌리면 {ref_ko}과 같음: {layers}개 층 중 {lined}개 일치 "
                f"({st.p_text(c.permutation.p)})")
    null = f.get("null_median")
    if r is None or null is None:
        return ("too little to compare", "비교할 수 있는 가중치가 부족함")
    line_en = (f"centred correlation {_fixed(r, 3)} with {ref_en} weights, where unrelated "
               f"layers score {_fixed(null, 2)}")
    line_ko = (f"{ref_ko}과의 중심화 상관계수 {_fixed(r, 3)} (서로 무관한 층끼리는 "
               f"{_fixed(null, 2)})")
    if "trap_cosine" in f:
        line_en += (f"; a raw cosine of {f['trap_cosine']:.2f} is no evidence: unrelated "
                    "models score as high")
        line_ko += (f"; 원시 코사인 유사도 {f['trap_cosine']:.2f}는 증거가 아님: 무관한 "
                    "모델도 그만큼 높게 나옴")
    return line_en, line_ko
