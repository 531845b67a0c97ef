"""The one mapping between Hugging Face `config.json` names and `Arch` fields.

HF spells the same dimension differently per family (`num_attention_heads`,
`num_key_value_heads`, `max_position_embeddings`, ...). Every place in the project that reads
or writes an HF config goes through these two functions, so the vocabulary lives here only.
"""

from __future__ import annotations

from typing import Any

from search_spaces.arch import Arch, Family, InvalidArchError

# HF `model_type` -> family. A new family member (e.g. "mistral") is one entry here plus its
# SuperLM registration in `supernet.registry`.
MODEL_TYPE_FAMILY: dict[str, Family] = {"bert": "encoder", "llama": "decoder"}


def family_of(model_type: str) -> Family:
    try:
        return MODEL_TYPE_FAMILY[model_type]
    except KeyError:
        raise InvalidArchError(
            f"teacher model_type: got {model_type!r}; supported: {sorted(MODEL_TYPE_FAMILY)}"
        ) from None


def arch_from_hf_config(config: dict[str, Any]) -> Arch:
    """The teacher's own architecture from its `config.json` dict (or `PretrainedConfig.to_dict()`)."""
    family = family_of(str(config.get("model_type")))
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = config.get("head_dim") or hidden // heads
    if family == "encoder":
        return Arch(
            family="encoder",
            num_layers=int(config["num_hidden_layers"]),
            hidden_size=hidden,
            num_heads=heads,
            num_kv_heads=heads,
            head_dim=int(head_dim),
            intermediate_size=int(config["intermediate_size"]),
            vocab_size=int(config["vocab_size"]),
            max_position=int(config["max_position_embeddings"]),
            type_vocab_size=int(config.get("type_vocab_size", 2)),
        )
    return Arch(
        family="decoder",
        num_layers=int(config["num_hidden_layers"]),
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(head_dim),
        intermediate_size=int(config["intermediate_size"]),
        vocab_size=int(config["vocab_size"]),
        max_position=int(config["max_position_embeddings"]),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def hf_config_overrides(arch: Arch) -> dict[str, Any]:
    """The `config.json` fields that carry `arch`'s shape; everything else (norm eps, activation,
    RoPE settings, token ids) is inherited from the teacher's config."""
    common: dict[str, Any] = {
        "num_hidden_layers": arch.num_layers,
        "hidden_size": arch.hidden_size,
        "num_attention_heads": arch.num_heads,
        "intermediate_size": arch.intermediate_size,
        "vocab_size": arch.vocab_size,
        "max_position_embeddings": arch.max_position,
    }
    if arch.family == "encoder":
        return {**common, "type_vocab_size": arch.type_vocab_size}
    return {
        **common,
        "num_key_value_heads": arch.num_kv_heads,
        "head_dim": arch.head_dim,
        "tie_word_embeddings": arch.tie_embeddings,
    }
