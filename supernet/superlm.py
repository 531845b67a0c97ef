"""The weight-sharing supernet common to both families.

A SuperLM owns a copy of the teacher's HF parameters, under the teacher's HF names. A
sub-network is a set of *leading slices* of those tensors (heads, per-head dims, hidden
channels, FFN neurons) plus a choice of layers. Each family declares a weight map: for every HF
parameter name, which `Slice` rule cuts it for an `Arch`. `active(name)` applies that rule, and
both `forward` and `extract` read weights only through it, so the extracted model is, by
construction, the sub-network the supernet computes.

A SuperLM need not hold the whole teacher: `hull(shape)` returns one that holds only a
`SupernetShape` (the hull of a sub-space: the teacher layers its members keep, and the largest
widths any member uses). Its tensors have the hull's shape and its layer j stands for teacher
layer `shape.layers[j]`; the layer policy still maps a member's depth onto the teacher's layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn
from transformers import PretrainedConfig, PreTrainedModel

from search_spaces import LAYER_POLICIES, Arch, SupernetShape, layer_indices
from search_spaces.layers import LayerPolicy
from supernet.hf_models import MODEL_CLASS, student_config


class Slice(Enum):
    """How a teacher tensor is cut for a sub-network (h hidden, a heads, k kv heads, d head_dim,
    f FFN). Shapes are the teacher's (H, A, K, D, F) on the left, the student's on the right."""

    HIDDEN = "hidden"            # (H,) -> (h,)                  norms, output biases
    EMBEDDING = "embedding"      # (V, H) -> (V, h)              embeddings, LM head
    Q_PROJ = "q_proj"            # (A*D, H) -> (a*d, h)          query projection
    Q_BIAS = "q_bias"            # (A*D,) -> (a*d,)
    KV_PROJ = "kv_proj"          # (K*D, H) -> (k*d, h)          key / value projection (GQA)
    KV_BIAS = "kv_bias"          # (K*D,) -> (k*d,)
    O_PROJ = "o_proj"            # (H, A*D) -> (h, a*d)          attention output projection
    FFN_IN = "ffn_in"            # (F, H) -> (f, h)              up / gate projection
    FFN_BIAS = "ffn_bias"        # (F,) -> (f,)
    FFN_OUT = "ffn_out"          # (H, F) -> (h, f)              down projection
    SQUARE = "square"            # (H, H) -> (h, h)              pooler


def slice_tensor(rule: Slice, w: Tensor, arch: Arch, full: Arch) -> Tensor:
    """The active part of teacher-shaped tensor `w` for `arch` (a view where possible)."""
    h, a, k, d, f = arch.hidden_size, arch.num_heads, arch.num_kv_heads, arch.head_dim, arch.intermediate_size
    A, K, D = full.num_heads, full.num_kv_heads, full.head_dim
    if rule is Slice.HIDDEN:
        return w[:h]
    if rule is Slice.EMBEDDING:
        return w[:, :h]
    if rule is Slice.Q_PROJ:
        return w.view(A, D, -1)[:a, :d, :h].reshape(a * d, h)
    if rule is Slice.Q_BIAS:
        return w.view(A, D)[:a, :d].reshape(a * d)
    if rule is Slice.KV_PROJ:
        return w.view(K, D, -1)[:k, :d, :h].reshape(k * d, h)
    if rule is Slice.KV_BIAS:
        return w.view(K, D)[:k, :d].reshape(k * d)
    if rule is Slice.O_PROJ:
        return w.view(-1, A, D)[:h, :a, :d].reshape(h, a * d)
    if rule is Slice.FFN_IN:
        return w[:f, :h]
    if rule is Slice.FFN_BIAS:
        return w[:f]
    if rule is Slice.FFN_OUT:
        return w[:h, :f]
    if rule is Slice.SQUARE:
        return w[:h, :h]
    raise AssertionError(rule)


_LAYER = re.compile(r"^(?P<prefix>.*?\.)(?P<index>\d+)\.(?P<suffix>.*)$")


@dataclass
class LMOutput:
    """What a SuperLM forward returns.

    hidden: (B, T, h) final hidden states; logits: (B, T, V) for decoders, else None;
    qkv: the (B, T, width) query, key and value projections of the captured layer, or None;
    pooled: (B, h) BERT pooler output, or None.
    """

    hidden: Tensor
    logits: Tensor | None = None
    qkv: tuple[Tensor, Tensor, Tensor] | None = None
    pooled: Tensor | None = None


class SuperLM(nn.Module):
    """Base class: weight map, active-weight selection, `set_active`, `extract`.

    Subclasses set `FAMILY`, `LAYER_PREFIX` (the HF name prefix of the layer list),
    `LAYER_WEIGHTS` (suffix within a layer -> Slice) and `GLOBAL_WEIGHTS` (full name -> Slice),
    and implement `forward`.
    """

    FAMILY: ClassVar[str]
    LAYER_PREFIX: ClassVar[str]
    LAYER_WEIGHTS: ClassVar[dict[str, Slice]]
    GLOBAL_WEIGHTS: ClassVar[dict[str, Slice]]

    def __init__(self, teacher: PreTrainedModel, layer_policy: LayerPolicy = "uniform",
                 shape: SupernetShape | None = None) -> None:
        """A supernet initialised from (a copy of) `teacher`'s weights. `shape` says what those
        weights are when they are a hull rather than a whole teacher (see `hull`)."""
        super().__init__()
        from search_spaces import arch_from_hf_config

        if layer_policy not in LAYER_POLICIES:
            raise ValueError(f"layer_policy: got {layer_policy!r}; allowed: {list(LAYER_POLICIES)}")
        self.hf_config: PretrainedConfig = teacher.config
        # full_arch: the shape of the tensors held (the hull's, or the whole teacher's).
        self.full_arch = arch_from_hf_config(teacher.config.to_dict())
        self.shape = shape or SupernetShape.whole(self.full_arch)
        if self.shape.arch != self.full_arch:
            raise ValueError(f"shape: {self.shape.arch.id} does not match the weights given ({self.full_arch.id})")
        # teacher layer index -> the position of the supernet layer that holds it
        self._position = {teacher_layer: j for j, teacher_layer in enumerate(self.shape.layers)}
        self.layer_policy = layer_policy
        # A private copy: training the supernet must never move the teacher's weights.
        self.body = MODEL_CLASS[self.FAMILY](student_config(self.full_arch, teacher.config))
        self.body.load_state_dict(teacher.state_dict())
        self.body.float()
        self._weights: dict[str, Tensor] = dict(self.body.named_parameters())
        self._check_weight_map()
        self.arch = self.full_arch
        self.layers = list(range(self.full_arch.num_layers))
        # Called as observer(layer, "heads" | "neurons", x) with the inputs of the attention
        # output projection (B, T, a*d) and of the FFN down projection (B, T, f); see importance.py.
        self.observer: Callable[[int, str, Tensor], None] | None = None

    # -- the weight map ------------------------------------------------------------------

    def rule_for(self, name: str) -> Slice:
        if name in self.GLOBAL_WEIGHTS:
            return self.GLOBAL_WEIGHTS[name]
        match = _LAYER.match(name)
        if match and match["prefix"] == self.LAYER_PREFIX and match["suffix"] in self.LAYER_WEIGHTS:
            return self.LAYER_WEIGHTS[match["suffix"]]
        raise KeyError(f"{type(self).__name__}: no slicing rule for teacher weight {name!r}")

    def _check_weight_map(self) -> None:
        for name in self._weights:  # unexpected keys raise at construction, not mid-training
            self.rule_for(name)

    def active(self, name: str) -> Tensor:
        """The active slice of teacher weight `name` for the current `arch`. The one place
        that selects weights: forward and extract both call it."""
        return slice_tensor(self.rule_for(name), self._weights[name], self.arch, self.full_arch)

    def layer(self, index: int, suffix: str) -> Tensor:
        return self.active(f"{self.LAYER_PREFIX}{index}.{suffix}")

    # -- choosing the sub-network ---------------------------------------------------------

    def set_active(self, arch: Arch) -> None:
        """Compute exactly `arch` from now on. Raises InvalidArchError/ValueError if it does not
        fit in the teacher or belongs to another family."""
        full = self.full_arch
        if arch.family != full.family:
            raise ValueError(f"arch.family: got {arch.family!r}; this supernet is {full.family!r}")
        for dim in ("vocab_size", "max_position", "type_vocab_size", "tie_embeddings"):
            if getattr(arch, dim) != getattr(full, dim):
                raise ValueError(f"arch.{dim}: got {getattr(arch, dim)}; must equal the teacher's {getattr(full, dim)}")
        why = self.shape.holds(arch, self.layer_policy)
        if why is not None:
            raise ValueError(why)
        self.arch = arch
        kept = layer_indices(self.layer_policy, arch.num_layers, self.shape.teacher_layers)
        self.layers = [self._position[i] for i in kept]

    # -- extraction -----------------------------------------------------------------------

    def active_state_dict(self, arch: Arch) -> dict[str, Tensor]:
        """The HF state dict of `arch` (student layer j <- supernet layer self.layers[j])."""
        previous = self.arch
        self.set_active(arch)
        try:
            return self._sliced_state(self.layers)
        finally:
            self.set_active(previous)

    def _sliced_state(self, layers: list[int]) -> dict[str, Tensor]:
        """The active widths of every weight, layer j of the result <- supernet layer layers[j]."""
        kept = {index: j for j, index in enumerate(layers)}
        state: dict[str, Tensor] = {}
        for name in self._weights:
            match = _LAYER.match(name)
            if match and match["prefix"] == self.LAYER_PREFIX:
                index = int(match["index"])
                if index not in kept:
                    continue
                target = f"{self.LAYER_PREFIX}{kept[index]}.{match['suffix']}"
            else:
                target = name
            state[target] = self.active(name).detach().clone().contiguous()
        return state

    @torch.no_grad()
    def hull(self, shape: SupernetShape) -> SuperLM:
        """A new SuperLM of the same class and layer policy holding only `shape`, its weights the
        leading slices of this one's (so it computes every member exactly as this one does)."""
        if shape.teacher_layers != self.shape.teacher_layers:
            raise ValueError(
                f"shape.teacher_layers: got {shape.teacher_layers}; this supernet's teacher has "
                f"{self.shape.teacher_layers}"
            )
        missing = sorted(set(shape.layers) - set(self._position))
        if missing:
            raise ValueError(f"shape.layers: teacher layers {missing} are not held by this supernet")
        previous, previous_layers = self.arch, self.layers
        self.arch = shape.arch.replace(num_layers=self.full_arch.num_layers)  # widths only; layers below
        try:
            state = self._sliced_state([self._position[i] for i in shape.layers])
        finally:
            self.arch, self.layers = previous, previous_layers
        model = _model_with(shape.arch, self.hf_config, state)
        return type(self)(model, self.layer_policy, shape).to(next(self.parameters()).device)

    def extract(self, arch: Arch, attn_implementation: str = "sdpa") -> PreTrainedModel:
        """A stock HF model (`BertModel` / `LlamaForCausalLM`) with `arch`'s weights copied."""
        return _model_with(arch, self.hf_config, self.active_state_dict(arch), attn_implementation).eval()

    # -- state ----------------------------------------------------------------------------

    def weights(self) -> dict[str, Tensor]:
        """The supernet's full, teacher-shaped weights by HF name (for checkpoints)."""
        return self._weights

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.FAMILY,
            "full_arch": self.full_arch.to_dict(),
            "layer_policy": self.layer_policy,
            "shape": self.shape.to_dict(),
        }


def _model_with(
    arch: Arch, base: PretrainedConfig, state: dict[str, Tensor], attn_implementation: str = "sdpa"
) -> PreTrainedModel:
    """A stock HF model of `arch` (config inherited from `base`) holding exactly `state`."""
    config = student_config(arch, base)
    config._attn_implementation = attn_implementation
    model = MODEL_CLASS[arch.family](config)
    if arch.tie_embeddings:
        state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise KeyError(f"weight map mismatch for {arch.id}; missing {missing}, unexpected {unexpected}")
    return model
