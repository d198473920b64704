"""Small synthetic models for the provenance check, written with numpy and safetensors.

Transformer-like names and shapes: a Qwen2.5-VL-style vision tower (``visual.*``) and a
Llama-style language model (``model.layers.*``, ``model.embed_tokens``, ``lm_head``), with
norm scales near 1 as trained models have them. The variants are the cases the check must
tell apart: a fine-tune, a copy with its hidden units reordered, an independent model, a
model whose vision tower is copied, a renamed copy.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Size:
    hidden: int = 64
    inter: int = 176
    layers: int = 4
    vocab: int = 600
    v_hidden: int = 48
    v_inter: int = 128
    v_layers: int = 3
    norm_spread: float = 0.1  # norm scales are 1 + spread * N(0, 1)


def base(seed: int, size: Size = Size()) -> Weights:
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1 + size.norm_spread * rng.standard_normal(n)).astype(np.float32)

    h, i, vh, vi = size.hidden, size.inter, size.v_hidden, size.v_inter
    w: Weights = {"visual.patch_embed.proj.weight":
                  (rng.standard_normal((vh, 3, 4, 4)) * 0.1).astype(np.float32)}
    for n in range(size.v_layers):
        p = f"visual.blocks.{n}."
        w |= {p + "norm1.weight": norm(vh), p + "attn.qkv.weight": mat(3 * vh, vh),
              p + "attn.proj.weight": mat(vh, vh), p + "norm2.weight": norm(vh),
              p + "mlp.gate_proj.weight": mat(vi, vh), p + "mlp.up_proj.weight": mat(vi, vh),
              p + "mlp.down_proj.weight": mat(vh, vi)}
    w["visual.merger.mlp.0.weight"] = mat(h, vh)
    w["model.embed_tokens.weight"] = mat(size.vocab, h)
    for n in range(size.layers):
        p = f"model.layers.{n}."
        w |= {p + "input_layernorm.weight": norm(h), p + "post_attention_layernorm.weight": norm(h)}
        w |= {p + f"self_attn.{x}_proj.weight": mat(h, h) for x in "qkvo"}
        w |= {p + "mlp.gate_proj.weight": mat(i, h), p + "mlp.up_proj.weight": mat(i, h),
              p + "mlp.down_proj.weight": mat(h, i)}
    w["model.norm.weight"] = norm(h)
    w["lm_head.weight"] = mat(size.vocab, h)
    return w


def fine_tune(w: Weights, seed: int, noise: float = 0.1) -> Weights:
    """Each tensor plus noise at ``noise`` times its own spread (correlation ~0.995)."""
    rng = np.random.default_rng(seed)
    return {k: (v + noise * v.std() * rng.standard_normal(v.shape)).astype(np.float32)
            for k, v in w.items()}


def permuted(w: Weights, seed: int) -> Weights:
    """The same function with its hidden units reordered: the residual stream's units (one
    order for the whole language model, one for the vision tower) and each MLP's
    intermediate units; rows and the matching columns move together."""
    rng = np.random.default_rng(seed)
    h = w["model.embed_tokens.weight"].shape[1]
    vh = w["visual.patch_embed.proj.weight"].shape[0]
    ph, pv = rng.permutation(h), rng.permutation(vh)
    out: Weights = {}
    for k, v in w.items():
        stream = pv if k.startswith("visual.") and "merger" not in k else ph
        if k.endswith("norm.weight") or "norm1" in k or "norm2" in k or "layernorm" in k:
            out[k] = v[stream]
        elif "patch_embed" in k:
            out[k] = v[pv]
        elif "embed_tokens" in k or "lm_head" in k:
            out[k] = v[:, ph]
        elif "merger" in k:
            out[k] = v[ph][:, pv]
        elif "qkv" in k or any(f"{x}_proj" in k for x in "qkv"):
            out[k] = v[:, stream]
        elif "attn.proj" in k or "o_proj" in k:
            out[k] = v[stream]
        elif "gate_proj" in k or "up_proj" in k:
            out[k] = v  # rows are reordered below, with the layer's down_proj
        elif "down_proj" in k:
            out[k] = v
        else:
            raise AssertionError(f"permuted() does not know {k}")
    for k in [k for k in out if k.endswith("mlp.up_proj.weight")]:
        layer = k.removesuffix("up_proj.weight")
        pi = rng.permutation(out[k].shape[0])
        stream = pv if k.startswith("visual.") else ph
        for name in ("gate_proj", "up_proj"):
            out[layer + name + ".weight"] = out[layer + name + ".weight"][pi][:, stream]
        out[layer + "down_proj.weight"] = out[layer + "down_proj.weight"][stream][:, pi]
    return out


def vision_from(donor: Weights, rest: Weights) -> Weights:
    """``rest`` with its vision tower replaced by ``donor``'s (the disqualification case)."""
    return {k: (donor[k] if k.startswith("visual.") else v) for k, v in rest.items()}


RENAMES = (("visual.", "vision_tower."), ("model.layers.", "transformer.h."),
           ("model.embed_tokens.", "transformer.wte."), ("model.norm.", "transformer.ln_f."),
           ("mlp.gate_proj", "mlp.w1"), ("mlp.up_proj", "mlp.w3"), ("mlp.down_proj", "mlp.w2"))


def renamed(w: Weights) -> Weights:
    out = {}
    for k, v in w.items():
        for old, new in RENAMES:
            k = k.replace(old, new)
        out[k] = v
    return out


def tokenizer(seed: int, size: int = 600) -> dict[str, object]:
    """A BPE tokenizer.json: byte-ish base tokens, then merges drawn from the seed."""
    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz가나다라마바사아자차카타파하"
    vocab = {c: n for n, c in enumerate(letters)}
    merges = []
    while len(vocab) < size:
        tokens = list(vocab)
        left, right = tokens[rng.integers(len(tokens))], tokens[rng.integers(len(tokens))]
        if left + right not in vocab:
            vocab[left + right] = len(vocab)
            merges.append(f"{left} {right}")
    return {"version": "1.0", "added_tokens": [],
            "model": {"type": "BPE", "vocab": vocab, "merges": merges}}


def write(folder: Path, w: Weights, tok: dict[str, object] | None = None, shards: int = 1,
          bf16: bool = False) -> Path:
    """A model folder: safetensors (sharded with an index when ``shards`` > 1), config.json
    and, when given, tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(w)
    parts = [names[n::shards] for n in range(shards)]
    weight_map = {}
    for n, part in enumerate(parts):
        file = ("model.safetensors" if shards == 1
                else f"model-{n + 1:05d}-of-{shards:05d}.safetensors")
        tensors = {k: w[k] for k in part}
        (write_bf16 if bf16 else _write_f32)(folder / file, tensors)
        weight_map |= dict.fromkeys(part, file)
    if shards > 1:
        (folder / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {}, "weight_map": weight_map}))
    emb = next(v for k, v in w.items() if "embed_tokens" in k or "wte" in k)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
        "hidden_size": int(emb.shape[1]), "vocab_size": int(emb.shape[0]),
        "vision_config": {"model_type": "qwen2_5_vl"}}))
    if tok is not None:
        (folder / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    return folder


def _write_f32(path: Path, tensors: Weights) -> None:
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              str(path))


def write_bf16(path: Path, tensors: Weights) -> None:
    """safetensors in BF16, as most released models are (numpy has no bfloat16, so the
    library's numpy writer cannot)."""
    stream_bf16(path, {k: tuple(v.shape) for k, v in tensors.items()}, tensors.__getitem__)


def stream_bf16(path: Path, shapes: dict[str, tuple[int, ...]],
                make: Callable[[str], np.ndarray]) -> None:
    """A BF16 safetensors file written one tensor at a time (``make(name)``), so a model of
    gigabytes never sits in memory: the format's own layout, a little-endian header length,
    a JSON header, then the data; float32 rounded to the nearest even BF16."""
    header: dict[str, object] = {}
    offset = 0
    for k, shape in shapes.items():
        nbytes = 2 * int(np.prod(shape))
        header[k] = {"dtype": "BF16", "shape": list(shape),
                     "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for k, shape in shapes.items():
            bits = np.ascontiguousarray(make(k), dtype=np.float32).reshape(shape).view(np.uint32)
            rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16
            out.write(rounded.astype(np.uint16).tobytes())
