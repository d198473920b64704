"""Which part of a model each tensor belongs to, and what role it plays, from its name.

Names follow a few families (Llama/Qwen ``model.layers.N.mlp.up_proj``, CLIP/SigLIP
``vision_model.encoder.layers.N.mlp.fc1``, Qwen-VL ``visual.blocks.N``, GPT-2 ``h.N``):
the patterns below cover them, and a tensor no pattern claims belongs to the language model.
"""

from __future__ import annotations

import re
from typing import Any

VISION = "vision"
LANGUAGE = "language"
EMBEDDINGS = "embeddings"
TOKENIZER = "tokenizer"
#: Components in report order; ``--component`` picks one of the first two or all.
COMPONENTS = (VISION, LANGUAGE, EMBEDDINGS, TOKENIZER)
CHOICES = {VISION: (VISION,), LANGUAGE: (LANGUAGE, EMBEDDINGS, TOKENIZER), "all": COMPONENTS}

#: English, and Korean with its topic particle (은/는 follows the last syllable).
NAMES = {VISION: ("vision encoder", "비전 인코더는"), LANGUAGE: ("language model", "언어 모델은"),
         EMBEDDINGS: ("embedding layer", "임베딩 층은"), TOKENIZER: ("tokenizer", "토크나이저는")}

_VISION = re.compile(r"(^|\.)(visual|vision_tower|vision_model|vision_encoder|image_encoder|"
                     r"vision|vit|multi_modal_projector|mm_projector)(\.|$)")
_EMBEDDINGS = re.compile(r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|lm_head|"
                         r"embed_out|output)\.weight$")
#: The matrix that fixes one axis of the hidden units: token embeddings (rows are tokens,
#: the same in both models when the vocabularies agree) or a vision patch embedding (columns
#: are pixels).
_TOKEN_ANCHOR = re.compile(r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings)\.weight$")
_PATCH_ANCHOR = re.compile(r"patch_embed(ding)?(\.proj)?\.weight$")
#: An MLP's first matrix [intermediate, hidden] and its last [hidden, intermediate]: the
#: intermediate units they share are what the permutation test matches.
_MLP_UP = re.compile(r"mlp\.(up_proj|fc1|w1|linear_fc1)\.weight$")
_MLP_DOWN = re.compile(r"mlp\.(down_proj|fc2|w2|linear_fc2)\.weight$")
_LAYER = re.compile(r"\.(\d+)\.")


def component_of(name: str) -> str:
    if _VISION.search(name):
        return VISION
    if _EMBEDDINGS.search(name):
        return EMBEDDINGS
    return LANGUAGE


def stream_of(component: str) -> str:
    """Which chain of hidden units a component's matrices sit on: the vision tower's own, or
    the language model's (its embeddings included)."""
    return VISION if component == VISION else LANGUAGE


def kind_of(name: str) -> str:
    """The name with its layer number blanked: tensors of one kind, one per layer."""
    return _LAYER.sub(".#.", name, count=1)


def layer_of(name: str) -> int | None:
    found = _LAYER.search(name)
    return int(found.group(1)) if found else None


def anchor_axis(name: str, shape: tuple[int, ...]) -> int | None:
    """The axis of hidden units in an anchor matrix (1 for token embeddings, 0 for a patch
    embedding), or None for any other tensor."""
    if len(shape) == 2 and _TOKEN_ANCHOR.search(name):
        return 1
    if len(shape) >= 2 and _PATCH_ANCHOR.search(name):
        return 0
    return None


def shared_rows(name: str, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> int | None:
    """For token embeddings and output heads whose vocabularies differ in size (a
    vocabulary extended for Korean, say), the leading rows both have: the tokens an
    extension keeps in place. None for any other tensor or shape."""
    if (len(shape_a) == 2 and shape_a[1:] == shape_b[1:] and shape_a[0] != shape_b[0]
            and _EMBEDDINGS.search(name)):
        return min(shape_a[0], shape_b[0])
    return None


def mlp_role(name: str, shape: tuple[int, ...]) -> str | None:
    if len(shape) != 2:
        return None
    if _MLP_UP.search(name):
        return "up"
    if _MLP_DOWN.search(name):
        return "down"
    return None


def declared(config: dict[str, Any]) -> dict[str, Any]:
    """What a model's config.json says it is: architecture, sizes, and a vision tower's type
    (Naver's declared a Qwen2.5-VL-type encoder; the report shows what each side declares)."""
    vision = _section(config, "vision_config") or {}
    text = _section(config, "text_config") or config
    out = {"architectures": config.get("architectures"), "model_type": config.get("model_type"),
           "hidden_size": text.get("hidden_size"), "layers": text.get("num_hidden_layers"),
           "vocab_size": text.get("vocab_size"),
           "vision_model_type": vision.get("model_type") if vision else None}
    return {k: v for k, v in out.items() if v is not None}


def _section(config: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = config.get(key)
    return value if isinstance(value, dict) else None
