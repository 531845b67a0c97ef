"""Stock Hugging Face configs and models for an `Arch`.

The student's config is the teacher's config with the shape fields replaced (norm eps,
activation, RoPE settings and token ids are inherited), so the exported model behaves like a
smaller teacher. Without a teacher config, the family's HF defaults are used.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)

from search_spaces import Arch, hf_config_overrides

CONFIG_CLASS: dict[str, type[PretrainedConfig]] = {"encoder": BertConfig, "decoder": LlamaConfig}
MODEL_CLASS: dict[str, type[PreTrainedModel]] = {"encoder": BertModel, "decoder": LlamaForCausalLM}

# Keys of a teacher config that must not carry over to a student built from it.
_DROPPED_KEYS = (
    "quantization_config",
    "_name_or_path",
    "architectures",
    "transformers_version",
    "dtype",
    "torch_dtype",
)


def student_config(arch: Arch, base: PretrainedConfig | dict[str, Any] | None = None) -> PretrainedConfig:
    """The HF config of `arch`, inheriting every non-shape field from `base` (the teacher's)."""
    cls = CONFIG_CLASS[arch.family]
    data = base.to_dict() if isinstance(base, PretrainedConfig) else dict(base or {})
    for key in _DROPPED_KEYS:
        data.pop(key, None)
    data.update(hf_config_overrides(arch))
    data["model_type"] = cls.model_type
    data["architectures"] = [MODEL_CLASS[arch.family].__name__]
    config = cls.from_dict(data)
    return config


def build_model(
    arch: Arch, base: PretrainedConfig | dict[str, Any] | None = None, attn_implementation: str = "eager"
) -> PreTrainedModel:
    """A randomly initialised stock HF model of `arch` (fp32, eval mode)."""
    config = student_config(arch, base)
    config._attn_implementation = attn_implementation
    return MODEL_CLASS[arch.family](config).eval()
