"""HF `model_type` -> SuperLM class. A new teacher family is one file plus one entry here."""

from __future__ import annotations

from transformers import PreTrainedModel

from search_spaces.layers import LayerPolicy
from supernet.decoder import SuperLlama
from supernet.encoder import SuperBert
from supernet.superlm import SuperLM

SUPERNETS: dict[str, type[SuperLM]] = {"bert": SuperBert, "llama": SuperLlama}


class UnsupportedTeacherError(ValueError):
    pass


def supernet_class(model_type: str) -> type[SuperLM]:
    try:
        return SUPERNETS[model_type]
    except KeyError:
        raise UnsupportedTeacherError(
            f"teacher model_type: got {model_type!r}; supported: {sorted(SUPERNETS)}"
        ) from None


def build_supernet(teacher: PreTrainedModel, layer_policy: LayerPolicy = "uniform") -> SuperLM:
    """The SuperLM of `teacher`'s family, initialised from (a copy of) its weights."""
    return supernet_class(teacher.config.model_type)(teacher, layer_policy)
