"""The figures: per-tensor hashes and sums, cosine and centred Pearson of a pair, where a
figure falls against the null of unmatched pairs, and the permutation-robust matching test.

Everything streams: a tensor is widened to float32 a chunk at a time, and a pair's figures
come from sums (``Sums``) and one cross product, so two tensors of the stored size are the
most ever held. The permutation test follows Zhu et al. (ICML 2025, "Independence tests for
language models"): an MLP's first matrix and its last share one set of intermediate units,
so matching each matrix's units to the other model's with the Hungarian algorithm gives two
permutations; a derived model, reordered or not, gives the same one twice, and an
independent model two unrelated ones. A rank correlation of the two per layer, combined
across layers by Fisher's method, is the test. The hidden units the matrices' other axis
runs over are first matched through an anchor (token or patch embeddings) whose own other
axis is fixed (tokens, pixels).
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.stats import combine_pvalues, spearmanr

from showcase.provenance.errors import ProvenanceError
from showcase.provenance.weights import CHUNK, TensorInfo, as_float32, float_chunks

#: Units matched per matrix in the permutation test: enough that a derived layer's rank
#: correlation is ~1 with p far below 1e-100, few enough that a 11008-unit layer takes
#: about a second (docs/performance.md).
SAMPLE_UNITS = 1024
#: Token rows used to describe a hidden unit of the token embeddings: the cosine of two
#: unrelated units then spreads by ~0.02, far below a copied unit's ~1.
SAMPLE_TOKENS = 2048
#: The smallest p-value carried into Fisher's sum (log(0) has no place in it).
P_FLOOR = 1e-300


@dataclass(frozen=True, slots=True)
class Sums:
    """One tensor's SHA-256 and its sums about a shift ``c`` (the first chunk's mean, so the
    sums of near-constant tensors, like norm scales near 1, keep their precision)."""

    sha256: str
    n: int
    c: float
    s1: float  # sum of (x - c)
    s2: float  # sum of (x - c)^2

    @property
    def constant(self) -> bool:
        return self.n * self.s2 - self.s1 * self.s1 <= 0.0


class Loaded:
    """A tensor in memory: its stored elements (flat), its hash under way in another
    thread, and its sums, made in the first pass over its elements that needs them (its
    first pair, so that no pass is spent on the sums alone)."""

    def __init__(self, info: TensorInfo, data: NDArray[Any], hasher: Executor) -> None:
        self.info = info
        self.data = data
        # hashlib lets go of the GIL: the hash runs beside the sums.
        self._digest = hasher.submit(_sha256, data)
        self.shift = float(as_float32(data[:CHUNK], info.dtype).mean(dtype=np.float64))
        self._s1: float | None = None
        self._s2 = 0.0

    @property
    def has_sums(self) -> bool:
        return self._s1 is not None

    @property
    def sums(self) -> Sums:
        """The hash and the sums, making the sums in a pass of their own if no pair has."""
        if self._s1 is None:
            s1 = s2 = 0.0
            for d in float_chunks(self.data, self.info.dtype, self.shift):
                s1, s2 = s1 + float(d.sum()), s2 + float(np.dot(d, d))
            self.settle(s1, s2)
        assert self._s1 is not None
        return Sums(self._digest.result(), self.info.size, self.shift, self._s1, self._s2)

    def settle(self, s1: float, s2: float) -> None:
        """Take the sums made in a pair's pass; NaN or infinity means a broken tensor."""
        if not (math.isfinite(s1) and math.isfinite(s2)):
            raise ProvenanceError(f"{self.info.file}: tensor {self.info.name} holds NaN or "
                                  "infinite values", "the file is corrupt, or the model is broken")
        self._s1, self._s2 = s1, s2


def _sha256(data: NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(data).data.cast("B")).hexdigest()


@dataclass(frozen=True, slots=True)
class PairFigures:
    cosine: float
    pearson: float


def pair_figures(a: Loaded, b: Loaded) -> PairFigures:
    """Raw cosine and mean-centred Pearson of two tensors of one shape, from one pass that
    also makes either tensor's own sums if it has none yet."""
    a_new, b_new = not a.has_sums, not b.has_sums
    cross = sa1 = sa2 = sb1 = sb2 = 0.0
    for da, db in zip(float_chunks(a.data, a.info.dtype, a.shift),
                      float_chunks(b.data, b.info.dtype, b.shift), strict=True):
        cross += float(np.dot(da, db))
        if a_new:  # float32 pairwise within a chunk; shifted values sum near 0
            sa1, sa2 = sa1 + float(da.sum()), sa2 + float(np.dot(da, da))
        if b_new:
            sb1, sb2 = sb1 + float(db.sum()), sb2 + float(np.dot(db, db))
    if a_new:
        a.settle(sa1, sa2)
    if b_new:
        b.settle(sb1, sb2)
    return _figures(a.sums, b.sums, cross)


def _figures(sa: Sums, sb: Sums, cross: float) -> PairFigures:
    n = sa.n
    # Back from shifted sums to raw ones: sum(ab) = sum(a'b') + cb sum(a') + ca sum(b') + n ca cb
    raw_ab = cross + sb.c * sa.s1 + sa.c * sb.s1 + n * sa.c * sb.c
    raw_aa = sa.s2 + 2 * sa.c * sa.s1 + n * sa.c * sa.c
    raw_bb = sb.s2 + 2 * sb.c * sb.s1 + n * sb.c * sb.c
    var_a, var_b = n * sa.s2 - sa.s1 ** 2, n * sb.s2 - sb.s1 ** 2
    cov = n * cross - sa.s1 * sb.s1
    return PairFigures(_ratio(raw_ab, math.sqrt(max(raw_aa * raw_bb, 0.0))),
                       _ratio(cov, math.sqrt(max(var_a, 0.0) * max(var_b, 0.0))))


def _ratio(num: float, den: float) -> float:
    return max(-1.0, min(1.0, num / den)) if den > 0 else 0.0


@dataclass(frozen=True, slots=True)
class NullStanding:
    """Where a figure falls among unmatched pairs: their mean and spread, the z-score and
    the empirical p-value (the share of null pairs at least as high, plus one)."""

    mean: float
    sd: float
    pairs: int
    z: float
    p: float


def against_null(value: float, null: list[float], size: int) -> NullStanding:
    """``size`` floors the spread at 1/sqrt(size), the spread of the correlation of two
    independent vectors that long: a handful of null pairs that happen to agree must not
    make an ordinary figure look extreme."""
    mean = float(np.mean(null)) if null else 0.0
    sd = max(float(np.std(null, ddof=1)) if len(null) > 1 else 0.0, 1 / math.sqrt(size))
    p = (1 + sum(v >= value for v in null)) / (1 + len(null))
    return NullStanding(mean, sd, len(null), (value - mean) / sd, p)


# --- the permutation-robust test ---------------------------------------------------------

def sample(count: int, limit: int, seed: int) -> NDArray[np.intp]:
    """``limit`` of ``range(count)`` (all when fewer), sorted, the same for the same seed:
    both models' matrices are read at the same rows."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def as_matrix(t: Loaded) -> NDArray[Any]:
    """The stored elements as a 2-D view (first axis kept, the rest flattened)."""
    return t.data.reshape(t.info.shape[0], -1)


def match_units(a_units: NDArray[np.float32], b_units: NDArray[np.float32]
                ) -> NDArray[np.intp]:
    """For each of A's unit vectors (rows), the row of B the Hungarian algorithm pairs it
    with, maximising the summed cosine. Both arrays are scaled in place."""
    a = _unit_rows(a_units)
    b = _unit_rows(b_units)
    rows, cols = linear_sum_assignment(a @ b.T, maximize=True)
    out = np.empty(len(a), dtype=np.intp)
    out[rows] = cols
    return out


def _unit_rows(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    """``rows`` scaled to unit length, in place (they are the caller's fresh copy)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows /= np.where(norms > 0, norms, np.float32(1.0))
    return rows


@dataclass(frozen=True, slots=True)
class HiddenMatch:
    """A sample ``units`` of A's hidden units and the B units matched to them."""

    units: NDArray[np.intp]
    partners: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class AnchorSample:
    """What the hidden-unit matching needs of an anchor pair, copied out of the tensors so
    that they can be let go before the matching runs."""

    units: NDArray[np.intp]
    a_units: NDArray[np.float32]
    b_units: NDArray[np.float32]

    def match(self) -> HiddenMatch:
        return HiddenMatch(self.units, match_units(self.a_units, self.b_units))


def anchor_sample(a: Loaded, b: Loaded, axis: int) -> AnchorSample:
    """The sampled hidden units of an anchor whose other axis both models share (tokens of
    token embeddings, pixels of a patch embedding)."""
    ma, mb = as_matrix(a), as_matrix(b)
    if axis == 1:  # token embeddings [vocab, hidden]: units are columns, tokens rows
        tokens = sample(min(ma.shape[0], mb.shape[0]), SAMPLE_TOKENS, seed=1)
        ma, mb = ma[tokens].T, mb[tokens].T
    units = sample(ma.shape[0], SAMPLE_UNITS, seed=2)
    return AnchorSample(units, as_float32(ma[units], a.info.dtype),
                        as_float32(mb, b.info.dtype))


def identity_hidden(size: int) -> HiddenMatch:
    """No anchor: take the hidden units to be in the same order in both models."""
    units = sample(size, SAMPLE_UNITS, seed=2)
    return HiddenMatch(units, units)


def match_mlp(a: Loaded, b: Loaded, role: str, hidden: HiddenMatch) -> NDArray[np.intp]:
    """Match a sample of the intermediate units of one MLP matrix (the same sample for a
    layer's first and last matrix), reading its hidden axis through ``hidden``."""
    ma, mb = as_matrix(a), as_matrix(b)
    if role == "down":  # [hidden, intermediate]: units are columns
        ma, mb = ma.T, mb.T
    inter = sample(ma.shape[0], SAMPLE_UNITS, seed=3)
    a_units = as_float32(np.ascontiguousarray(ma[inter][:, hidden.units]), a.info.dtype)
    b_units = as_float32(np.ascontiguousarray(mb[:, hidden.partners]), b.info.dtype)
    return match_units(a_units, b_units)


@dataclass(frozen=True, slots=True)
class LayerTest:
    layer: int
    rho: float
    p: float


def layer_test(layer: int, up: NDArray[np.intp], down: NDArray[np.intp]) -> LayerTest:
    """Spearman's rank correlation of the two matchings, one-sided (a derived model gives
    the same matching twice: rho = 1)."""
    result = spearmanr(up, down, alternative="greater")
    rho = float(result.statistic)
    p = float(result.pvalue)
    if not math.isfinite(rho):  # one matching constant: no information
        return LayerTest(layer, 0.0, 1.0)
    return LayerTest(layer, rho, max(p, P_FLOOR))


def fisher(p_values: list[float]) -> float:
    if not p_values:
        return 1.0
    if len(p_values) == 1:
        return p_values[0]
    return max(float(combine_pvalues([max(p, P_FLOOR) for p in p_values],
                                     method="fisher").pvalue), P_FLOOR)


def p_text(p: float) -> str:
    return f"p < {P_FLOOR:.0e}" if p <= P_FLOOR else f"p = {p:.1e}"
