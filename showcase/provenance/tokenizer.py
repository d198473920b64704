"""Two tokenizers (Hugging Face ``tokenizer.json``) compared: vocabulary and merges.

Many honest teams reuse a published tokenizer, so a shared tokenizer says where the
vocabulary came from, not the weights; the report keeps it a component of its own.
Independently trained BPE tokenizers share their commonest merges (``t h``, ``i n``) but
diverge quickly after; a copy shares nearly all, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scipy.stats import spearmanr


@dataclass(frozen=True, slots=True)
class TokenizerFigures:
    vocab_a: int
    vocab_b: int
    vocab_overlap: float  # Jaccard of the token strings
    same_ids: float  # share of A's tokens that B has under the same id
    merges_a: int
    merges_b: int
    merge_overlap: float | None  # Jaccard of the merges; None when either has none
    merge_order: float | None  # Spearman of the shared merges' ranks


def vocabulary(tokenizer: dict[str, Any]) -> dict[str, int]:
    """Token -> id, from a BPE/WordPiece dict or a Unigram list of [token, score]."""
    vocab = (tokenizer.get("model") or {}).get("vocab") or {}
    if isinstance(vocab, list):
        vocab = {entry[0]: i for i, entry in enumerate(vocab) if entry}
    out = {str(k): int(v) for k, v in vocab.items()} if isinstance(vocab, dict) else {}
    for added in tokenizer.get("added_tokens") or []:
        if isinstance(added, dict) and "content" in added and "id" in added:
            out.setdefault(str(added["content"]), int(added["id"]))
    return out


def merges(tokenizer: dict[str, Any]) -> list[str]:
    raw = (tokenizer.get("model") or {}).get("merges") or []
    return [" ".join(m) if isinstance(m, list) else str(m) for m in raw]


def compare_tokenizers(a: dict[str, Any], b: dict[str, Any]) -> TokenizerFigures:
    va, vb = vocabulary(a), vocabulary(b)
    shared = va.keys() & vb.keys()
    ma, mb = merges(a), merges(b)
    overlap = order = None
    if ma and mb:
        rank_b = {m: i for i, m in enumerate(mb)}
        common = [m for m in ma if m in rank_b]
        overlap = len(common) / len(set(ma) | set(mb))
        if len(common) > 2:
            order = float(spearmanr(range(len(common)), [rank_b[m] for m in common]).statistic)
    return TokenizerFigures(
        len(va), len(vb), len(shared) / max(1, len(va.keys() | vb.keys())),
        sum(va[t] == vb[t] for t in shared) / max(1, len(va)), len(ma), len(mb), overlap, order)
