"""One provenance check: two models in, a verdict per component out, with its evidence.

The pass reads every tensor once. Tensors of one kind (``layers.#.mlp.up_proj.weight``)
are read in the order A0 B0 B1 A1 B2 A2 ..., so that each matched pair (Ai, Bi) and each
unmatched neighbour (Ai, Bi+1) is measured with at most two tensors in memory; the
unmatched pairs are the null baseline. Anchors (embeddings) come first, so the hidden units
are matched before the MLP matrices that the permutation test reads through them.

How a component's verdict is decided (``_decide``), in order:

1. half or more of its weights (by elements) are byte-identical to tensors of the other
   model, under any name: ``derived`` (exact copies);
2. half or more of its compared tensors correlate (centred Pearson >= 0.5 and >= 6 null
   standard deviations above the unmatched pairs): ``derived`` (correlation);
3. the permutation test's combined p-value is <= 1e-6: ``derived`` (reordered);
4. nothing copied, nothing correlated beyond what chance gives among that many tensors
   (3 null standard deviations, more for many tensors: ``_quiet_z``), the permutation
   test (where there is one) at p >= 0.01, and at least two tensors compared:
   ``independent``;
5. anything else: ``inconclusive``, with what was missing.

The raw cosine is reported beside each figure but decides nothing: norm scales near 1 give
unrelated models a raw cosine near 0.99 (the accusation Upstage faced); the centred
correlation of the same tensors is near 0.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scipy.stats import norm

from showcase.provenance import components as cp
from showcase.provenance import stats as st
from showcase.provenance.errors import ProvenanceError
from showcase.provenance.tokenizer import TokenizerFigures, compare_tokenizers
from showcase.provenance.weights import Model, TensorInfo, open_model

DERIVED = "derived"
INDEPENDENT = "independent"
INCONCLUSIVE = "inconclusive"

COPY_SHARE = 0.5
CORRELATED_R = 0.5
CORRELATED_Z = 6.0
QUIET_Z = 3.0
PERMUTED_P = 1e-6
UNRELATED_P = 0.01
#: A layer of the permutation test "lines up" at this p-value or below.
LINED_UP_P = 1e-3
#: Tensors that are the same in every model that has them, trained or not: computed
#: buffers, not weights.
_NOT_WEIGHTS = re.compile(r"(inv_freq|position_ids|rotary|attention\.bias|masked_bias)")

#: Called with (bytes read so far, bytes to read) as the pass goes.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TensorResult:
    """A tensor of A against its namesake in B."""

    name: str
    shape: list[int]
    exact: bool
    cosine: float
    pearson: float
    cosine_null: st.NullStanding
    pearson_null: st.NullStanding
    correlated: bool  # centred Pearson >= CORRELATED_R and z >= CORRELATED_Z
    rows_only: int | None = None  # compared on its first rows only (vocabularies differ)


@dataclass(frozen=True, slots=True)
class PermutationResult:
    layers: list[st.LayerTest]
    p: float
    anchor: str  # the tensor the hidden units were matched through, or "" for none


@dataclass(slots=True)
class ComponentReport:
    component: str
    verdict: str
    decided_by: str
    evidence: list[str]
    en: str
    ko: str
    tensors_a: int = 0  # A's weight tensors in the component, constant ones left out
    exact_copies: int = 0
    copied_share: float = 0.0
    renamed_copies: list[tuple[str, str]] = field(default_factory=list)
    compared: list[TensorResult] = field(default_factory=list)
    permutation: PermutationResult | None = None
    tokenizer: TokenizerFigures | None = None


@dataclass(frozen=True, slots=True)
class Report:
    model_a: str
    model_b: str
    declared_a: dict[str, Any]
    declared_b: dict[str, Any]
    bytes_read: int
    components: list[ComponentReport]


def check(path_a: str | Path, path_b: str | Path, component: str = "all",
          progress: Progress | None = None, permutation: bool = True) -> Report:
    """Compare model A (the one in question) with model B (the reference). Without
    ``permutation`` the permutation test is left out: a quicker screen, blind to copies
    whose units were reordered."""
    if component not in cp.CHOICES:
        raise ProvenanceError(f"unknown component {component!r}",
                              f"one of {', '.join(cp.CHOICES)}")
    wanted = cp.CHOICES[component]
    a, b = open_model(path_a), open_model(path_b)
    plan = _plan(a, b, wanted)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as hasher:
        measured = _Pass(a, b, plan, progress or (lambda done, total: None), hasher,
                         permutation).run()
    reports = [_component_report(c, a, b, plan, measured) for c in wanted
               if c != cp.TOKENIZER and plan.a_names[c]]
    if cp.TOKENIZER in wanted and (a.tokenizer or b.tokenizer):
        reports.append(_tokenizer_report(a, b))
    return Report(str(a.path), str(b.path), cp.declared(a.config), cp.declared(b.config),
                  measured.bytes_read, reports)


# --- what to read ------------------------------------------------------------------------

@dataclass(slots=True)
class _Plan:
    a_names: dict[str, list[str]]  # component -> A's tensors in it
    kinds: list[list[str]]  # name-matched, same-shape tensors, one list per kind, by layer
    alone_a: list[str]  # A's other tensors (hashed only)
    alone_b: list[str]  # B's tensors that could be copies of A's (hashed only)
    rows: dict[str, int]  # tensors compared on their leading rows only (vocabularies differ)

    def info(self, model: Model, name: str) -> TensorInfo:
        """The tensor as the check reads it: its leading rows only where ``rows`` says."""
        info = model.tensors[name]
        if name not in self.rows:
            return info
        shape = (self.rows[name], *info.shape[1:])
        return replace(info, shape=shape, nbytes=info.nbytes // info.shape[0] * shape[0])


def _plan(a: Model, b: Model, wanted: tuple[str, ...]) -> _Plan:
    a_names: dict[str, list[str]] = {c: [] for c in wanted}
    for name in a.tensors:
        comp = cp.component_of(name)
        if comp in a_names and not _NOT_WEIGHTS.search(name):
            a_names[comp].append(name)
    mine = [n for names in a_names.values() for n in names]
    if not mine:
        raise ProvenanceError(f"{a.path}: has no {' or '.join(cp.NAMES[c][0] for c in wanted)} "
                              "tensors (found from names like visual., vision_tower., "
                              "model.layers., embed_tokens)")
    shared = [n for n in mine if n in b.tensors]
    rows = {n: r for n in shared
            if (r := cp.shared_rows(n, a.tensors[n].shape, b.tensors[n].shape)) is not None}
    same = [n for n in shared if a.tensors[n].shape == b.tensors[n].shape or n in rows]
    if shared and not same:
        n = shared[0]
        raise ProvenanceError(
            f"shape mismatch: {n} is {list(a.tensors[n].shape)} in {a.path} and "
            f"{list(b.tensors[n].shape)} in {b.path}; no tensor of the same name has the "
            "same shape", "the models have different sizes: compare models of one architecture")
    sizes = {a.tensors[n].size for n in mine if n not in same}
    alone_b = [n for n, t in b.tensors.items() if n not in same and t.size in sizes]
    if not same and not alone_b:
        raise ProvenanceError(f"nothing comparable: {a.path} and {b.path} share no tensor "
                              "name and no tensor size", "is this the right reference model?")
    by_kind: dict[str, list[str]] = defaultdict(list)
    for n in same:
        by_kind[cp.kind_of(n)].append(n)
    kinds = sorted(by_kind.values(), key=lambda names: (
        cp.anchor_axis(names[0], a.tensors[names[0]].shape) is None, names[0]))
    for names in kinds:
        names.sort(key=lambda n: cp.layer_of(n) or 0)
    return _Plan(a_names, kinds, [n for n in mine if n not in same], alone_b, rows)


# --- the pass ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Measured:
    sums_a: dict[str, st.Sums] = field(default_factory=dict)
    sums_b: dict[str, st.Sums] = field(default_factory=dict)
    matched: dict[str, st.PairFigures] = field(default_factory=dict)
    null: dict[tuple[str, tuple[int, ...]], list[st.PairFigures]] = field(
        default_factory=lambda: defaultdict(list))
    hidden: dict[str, tuple[st.HiddenMatch, str]] = field(default_factory=dict)
    matchings: dict[tuple[str, int, str], Any] = field(default_factory=dict)
    bytes_read: int = 0


class _Pass:
    def __init__(self, a: Model, b: Model, plan: _Plan, progress: Progress,
                 hasher: ThreadPoolExecutor, permutation: bool) -> None:
        self.a, self.b, self.plan, self.progress = a, b, plan, progress
        self.hasher, self.permutation = hasher, permutation
        #: An anchor's sample, kept until the first MLP of its stream needs the matching
        #: (by then the anchor tensors are no longer held).
        self.anchors: dict[str, tuple[st.AnchorSample, str]] = {}
        self.out = _Measured()
        self.total = (sum(plan.info(a, n).nbytes for k in plan.kinds for n in k)
                      + sum(plan.info(b, n).nbytes for k in plan.kinds for n in k)
                      + sum(a.tensors[n].nbytes for n in plan.alone_a)
                      + sum(b.tensors[n].nbytes for n in plan.alone_b))

    def run(self) -> _Measured:
        self.progress(0, self.total)
        for names in self.plan.kinds:
            self._kind(names)
        for name in self.plan.alone_a:
            self.out.sums_a[name] = self._load(self.a, name).sums
        for name in self.plan.alone_b:
            self.out.sums_b[name] = self._load(self.b, name).sums
        return self.out

    def _load(self, model: Model, name: str) -> st.Loaded:
        info = self.plan.info(model, name)
        loaded = st.Loaded(info, model.read(name)[:info.size], self.hasher)
        self.out.bytes_read += info.nbytes
        self.progress(self.out.bytes_read, self.total)
        return loaded

    def _kind(self, names: list[str]) -> None:
        """A0 B0 | B1 (null A0,B1) | A1 (matched A1,B1) | B2 (null A1,B2) | ..."""
        a_t = self._load(self.a, names[0])
        b_t = self._load(self.b, names[0])
        self._matched(a_t, b_t)
        for name in names[1:]:
            del b_t  # let go of B(i) before B(i+1) is read: two tensors at most
            b_t = self._load(self.b, name)
            self._null(a_t, b_t)
            del a_t
            a_t = self._load(self.a, name)
            self._matched(a_t, b_t)

    def _null(self, a_t: st.Loaded, b_t: st.Loaded) -> None:
        key = (cp.component_of(a_t.info.name), a_t.info.shape)
        self.out.null[key].append(st.pair_figures(a_t, b_t))

    def _matched(self, a_t: st.Loaded, b_t: st.Loaded) -> None:
        name, shape = a_t.info.name, a_t.info.shape
        self.out.matched[name] = st.pair_figures(a_t, b_t)
        self.out.sums_a[name] = a_t.sums
        self.out.sums_b[name] = b_t.sums
        if not self.permutation:
            return
        stream = cp.stream_of(cp.component_of(name))
        axis = cp.anchor_axis(name, shape)
        if axis is not None and stream not in self.out.hidden and stream not in self.anchors:
            self.anchors[stream] = (st.anchor_sample(a_t, b_t, axis), name)
        role = cp.mlp_role(name, shape)
        layer = cp.layer_of(name)
        if role is not None and layer is not None:
            if stream in self.anchors:  # matched now: the anchors' tensors are let go
                sample, anchor = self.anchors.pop(stream)
                self.out.hidden[stream] = (sample.match(), anchor)
            hidden_size = shape[1] if role == "up" else shape[0]
            if stream not in self.out.hidden:
                self.out.hidden[stream] = (st.identity_hidden(hidden_size), "")
            self.out.matchings[(stream, layer, role)] = st.match_mlp(
                a_t, b_t, role, self.out.hidden[stream][0])


# --- verdicts ----------------------------------------------------------------------------

def _component_report(component: str, a: Model, b: Model, plan: _Plan,
                      m: _Measured) -> ComponentReport:
    names = plan.a_names[component]
    b_by_hash: dict[str, list[str]] = defaultdict(list)
    for bname, sums in m.sums_b.items():
        b_by_hash[sums.sha256].append(bname)
    weights = [n for n in names if not m.sums_a[n].constant]
    copies = [n for n in weights if m.sums_a[n].sha256 in b_by_hash]
    renamed = [(n, b_by_hash[m.sums_a[n].sha256][0]) for n in copies
               if n not in b_by_hash[m.sums_a[n].sha256]]
    total = sum(a.tensors[n].size for n in weights) or 1
    share = sum(plan.info(a, n).size for n in copies) / total
    compared = [_tensor_result(n, plan.info(a, n), m, n in copies, plan.rows.get(n))
                for n in weights if n in m.matched]
    permutation = _permutation(cp.stream_of(component), m)
    # Constant tensors (zero biases, untrained scales of 1) are equal in any two models:
    # they are counted neither as copies nor among the tensors.
    report = ComponentReport(component, "", "", [], "", "", len(weights), len(copies), share,
                             renamed, compared, permutation)
    _decide(report, b)
    return report


def _tensor_result(name: str, info: TensorInfo, m: _Measured, exact: bool,
                   rows: int | None) -> TensorResult:
    figures = m.matched[name]
    null = m.null.get((cp.component_of(name), info.shape), [])
    pearson = st.against_null(figures.pearson, [f.pearson for f in null], info.size)
    return TensorResult(name, list(info.shape), exact, figures.cosine, figures.pearson,
                        st.against_null(figures.cosine, [f.cosine for f in null], info.size),
                        pearson,
                        figures.pearson >= CORRELATED_R and pearson.z >= CORRELATED_Z, rows)


def _permutation(stream: str, m: _Measured) -> PermutationResult | None:
    layers = sorted({layer for (s, layer, _) in m.matchings if s == stream})
    tests = [st.layer_test(layer, m.matchings[(stream, layer, "up")],
                           m.matchings[(stream, layer, "down")]) for layer in layers
             if (stream, layer, "up") in m.matchings and (stream, layer, "down") in m.matchings]
    if not tests:
        return None
    return PermutationResult(tests, st.fisher([t.p for t in tests]), m.hidden[stream][1])


def _decide(r: ComponentReport, b: Model) -> None:
    what, ko = cp.NAMES[r.component]
    tested = r.compared
    correlated = [t for t in tested if t.correlated]
    loud = [t for t in tested if t.pearson_null.z >= _quiet_z(len(tested))]
    perm = r.permutation
    r.evidence = _evidence(r)
    if r.copied_share >= COPY_SHARE:
        _say(r, DERIVED, "exact copies",
             f"The {what} is copied from the reference: {r.exact_copies} of {r.tensors_a} "
             "weight tensors are byte-for-byte identical.",
             f"{ko} 기준 모델에서 복사되었습니다: 가중치 텐서 {r.tensors_a}개 중 "
             f"{r.exact_copies}개가 바이트 단위로 똑같습니다.")
    elif tested and len(correlated) * 2 >= len(tested):
        r_med, null_med = _medians(correlated)
        _say(r, DERIVED, "correlation",
             f"The {what} was built from the reference: its weights correlate at {r_med:.2f}, "
             f"where unrelated layers score {null_med:.2f}.",
             f"{ko} 기준 모델을 바탕으로 만들어졌습니다: 가중치 상관계수가 {r_med:.2f}로, "
             f"서로 무관한 층끼리의 {null_med:.2f}보다 훨씬 높습니다.")
    elif perm is not None and perm.p <= PERMUTED_P:
        lined_up = sum(t.p <= LINED_UP_P for t in perm.layers)
        _say(r, DERIVED, "permutation test",
             f"The {what} is the reference's with its neurons reordered: matched back, "
             f"{lined_up} of {len(perm.layers)} layers line up ({st.p_text(perm.p)}).",
             f"{ko} 뉴런 순서만 바꾼 기준 모델입니다: 순서를 되돌리면 {len(perm.layers)}개 "
             f"층 중 {lined_up}개가 일치합니다 ({st.p_text(perm.p)}).")
    elif (len(tested) >= 2 and r.exact_copies == 0 and not loud
          and (perm is None or perm.p >= UNRELATED_P)):
        r_med, null_med = _medians(tested)
        _say(r, INDEPENDENT, "no evidence of copying",
             f"No sign that the {what} was taken from the reference: its weights correlate at "
             f"{r_med:.2f}, as unrelated layers do ({null_med:.2f}).",
             f"{ko} 기준 모델에서 가져온 흔적이 없습니다: 가중치 상관계수가 {r_med:.2f}로, "
             f"서로 무관한 층끼리의 값({null_med:.2f})과 같은 수준입니다.")
    else:
        _say(r, INCONCLUSIVE, _missing(r, tested, loud, b),
             f"The evidence on the {what} is not clear either way; it needs a closer look.",
             f"{ko} 어느 쪽으로도 판단할 근거가 충분하지 않아 추가 검토가 필요합니다.")


def _quiet_z(tests: int) -> float:
    """The z-score one tensor among ``tests`` reaches by chance with probability 1 % at
    most (Bonferroni), and never below ``QUIET_Z``: among 300 tensors of a large model a few
    pass 3 standard deviations by chance alone."""
    return max(QUIET_Z, float(norm.isf(0.01 / max(tests, 1))))


def _say(r: ComponentReport, verdict: str, decided_by: str, en: str, ko: str) -> None:
    r.verdict, r.decided_by, r.en, r.ko = verdict, decided_by, en, ko


def _medians(results: Iterable[TensorResult]) -> tuple[float, float]:
    rows = list(results)
    return (statistics.median(t.pearson for t in rows),
            statistics.median(t.pearson_null.mean for t in rows))


def _missing(r: ComponentReport, tested: list[TensorResult], loud: list[TensorResult],
             b: Model) -> str:
    if not tested and not r.exact_copies:
        return f"nothing to compare: {b.path} has no tensor of the same name and shape"
    if len(tested) < 2 and r.permutation is None:
        return "too few tensors compared"
    parts = []
    if r.exact_copies:
        parts.append(f"{r.exact_copies} exact copies, {r.copied_share:.0%} of the weights")
    if loud:
        parts.append(f"{len(loud)} of {len(tested)} tensors correlate beyond chance, "
                     "too few or too weakly to call derived")
    if r.permutation is not None and UNRELATED_P > r.permutation.p > PERMUTED_P:
        parts.append(f"permutation test {st.p_text(r.permutation.p)}, between the thresholds")
    return "; ".join(parts) or "mixed evidence"


def _evidence(r: ComponentReport) -> list[str]:
    lines = [f"exact copies: {r.exact_copies} of {r.tensors_a} tensors "
             f"({r.copied_share:.1%} of the weights)"]
    lines += [f"copied under another name: {a} = {b}" for a, b in r.renamed_copies[:5]]
    if r.compared:
        corr = sum(t.correlated for t in r.compared)
        lines.append(f"correlated beyond the null: {corr} of {len(r.compared)} tensors compared")
        lines += [_tensor_line(t) for t in _notable(r.compared)]
    if r.permutation is not None:
        p = r.permutation
        through = f"hidden units matched through {p.anchor}" if p.anchor else \
            "hidden units taken in the same order (no shared anchor)"
        lines.append(f"permutation test over {len(p.layers)} layers: Fisher {st.p_text(p.p)}; "
                     f"{through}; median rank correlation "
                     f"{statistics.median(t.rho for t in p.layers):.2f}")
    return lines


def _notable(results: list[TensorResult]) -> list[TensorResult]:
    """The lines a reader needs: the strongest correlations, and any tensor whose raw cosine
    looks alarming while its centred correlation does not (the LayerNorm trap)."""
    strongest = sorted(results, key=lambda t: -t.pearson_null.z)[:3]
    trap = [t for t in results if t.cosine >= 0.9 and not t.correlated][:3]
    return list({t.name: t for t in strongest + trap}.values())


def _tensor_line(t: TensorResult) -> str:
    line = (f"{t.name}: centred Pearson {t.pearson:.3f} (null {t.pearson_null.mean:.3f} ± "
            f"{t.pearson_null.sd:.3f}, z = {t.pearson_null.z:.1f}), raw cosine {t.cosine:.3f} "
            f"(null {t.cosine_null.mean:.3f})")
    if t.rows_only is not None:
        line += f"; its first {t.rows_only} rows only, as the vocabularies differ in size"
    if t.cosine >= 0.9 and not t.correlated:
        line += ": the high raw cosine is no evidence, unrelated pairs score the same"
    return line


def _tokenizer_report(a: Model, b: Model) -> ComponentReport:
    what, ko = cp.NAMES[cp.TOKENIZER]
    if not (a.tokenizer and b.tokenizer):
        missing = a.path if not a.tokenizer else b.path
        r = ComponentReport(cp.TOKENIZER, "", "", [f"no tokenizer.json beside {missing}"],
                            "", "")
        _say(r, INCONCLUSIVE, "one tokenizer missing",
             f"The {what} could not be compared: one model has no tokenizer.json.",
             f"{ko} 한쪽 모델에 tokenizer.json이 없어 비교할 수 없습니다.")
        return r
    f = compare_tokenizers(a.tokenizer, b.tokenizer)
    r = ComponentReport(cp.TOKENIZER, "", "", _tokenizer_evidence(f), "", "", tokenizer=f)
    same_merges = f.merge_overlap is not None and f.merge_overlap >= 0.9 and \
        (f.merge_order or 0) >= 0.9
    same_vocab = f.merge_overlap is None and f.vocab_overlap >= 0.9 and f.same_ids >= 0.9
    if same_merges or same_vocab:
        _say(r, DERIVED, "merges" if same_merges else "vocabulary",
             f"The {what} is the reference's: {f.vocab_overlap:.0%} of the vocabulary is shared"
             + (f", and {f.merge_overlap:.0%} of the merges in the same order."
                if same_merges else "."),
             f"{ko} 기준 모델의 것과 같습니다: 어휘의 {f.vocab_overlap:.0%}가 겹칩니다.")
    elif f.vocab_overlap < 0.5 and (f.merge_overlap is None or f.merge_overlap < 0.5):
        _say(r, INDEPENDENT, "vocabulary",
             f"The {what} is its own: only {f.vocab_overlap:.0%} of the vocabulary is shared.",
             f"{ko} 독자적입니다: 어휘가 {f.vocab_overlap:.0%}만 겹칩니다.")
    else:
        _say(r, INCONCLUSIVE, "partial overlap",
             f"The {what} shares part of the reference's vocabulary "
             f"({f.vocab_overlap:.0%}); that alone does not show copying.",
             f"{ko} 기준 모델과 어휘가 일부({f.vocab_overlap:.0%}) 겹치지만, 그것만으로 "
             "복제라고 볼 수 없습니다.")
    return r


def _tokenizer_evidence(f: TokenizerFigures) -> list[str]:
    lines = [f"vocabulary: {f.vocab_a} and {f.vocab_b} tokens, {f.vocab_overlap:.1%} shared, "
             f"{f.same_ids:.1%} of A's under the same id"]
    if f.merge_overlap is not None:
        order = f"{f.merge_order:.2f}" if f.merge_order is not None else "-"
        lines.append(f"merges: {f.merges_a} and {f.merges_b}, {f.merge_overlap:.1%} shared, "
                     f"rank correlation of the shared ones {order}")
    return lines
