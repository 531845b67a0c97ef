"""Exact parameter and FLOP counts of an `Arch`, computed from its shape alone.

The counts describe the stock HF model that `supernet.extract` produces (`BertModel` with its
pooler for encoders, `LlamaForCausalLM` without biases for decoders); tests check them against
the instantiated model and `torch.utils.flop_counter.FlopCounterMode`.

Parameters (h hidden, A = heads*head_dim, K = kv_heads*head_dim, F intermediate, V vocab,
P max positions, T_v token types):

  encoder  embeddings  V*h + P*h + T_v*h + 2h (LayerNorm)
           per layer   3(h*A + A) [q,k,v] + (A*h + h) [out] + 2h [LN]
                       + (h*F + F) + (F*h + h) [FFN] + 2h [LN]
           pooler      h*h + h
  decoder  embeddings  V*h
           per layer   h*A + 2 h*K + A*h [q,k,v,o] + 3 h*F [gate, up, down] + 2h [RMSNorms]
           final norm  h;   LM head V*h unless tied

  non-embedding = total - word/position/token-type embeddings - an untied LM head.

FLOPs of one forward pass at batch B and sequence length T (N = B*T tokens), counted as
2 x multiply-accumulates of every matrix product, including the attention score (Q Kᵀ) and
value (softmax · V) products, which use all query heads (GQA repeats K and V):

  encoder  per layer  2N(3hA + Ah + 2hF) + 4 B heads T² head_dim;  pooler 2 B h²
  decoder  per layer  2N(hA + 2hK + Ah + 3hF) + 4 B heads T² head_dim
           LM head    2 N h V (on every position; optional)

Excluded (they are not matrix products): embedding lookups, norms, activations, softmax,
residual adds, bias adds, RoPE angles and rotation, masking. Attention FLOPs ignore padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Arch


@dataclass(frozen=True)
class ParamCount:
    total: int
    non_embedding: int


def params(arch: Arch) -> ParamCount:
    """Trainable parameters of the HF model for `arch` (see the module docstring)."""
    h, a, kv, f = arch.hidden_size, arch.attention_width, arch.kv_width, arch.intermediate_size
    if arch.family == "encoder":
        embedding = (arch.vocab_size + arch.max_position + arch.type_vocab_size) * h
        per_layer = 3 * (h * a + a) + (a * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
        other = 2 * h + h * h + h  # embedding LayerNorm, pooler
        total = embedding + arch.num_layers * per_layer + other
        return ParamCount(total=total, non_embedding=total - embedding)

    embedding = arch.vocab_size * h
    lm_head = 0 if arch.tie_embeddings else arch.vocab_size * h
    per_layer = h * a + 2 * h * kv + a * h + 3 * h * f + 2 * h
    total = embedding + arch.num_layers * per_layer + h + lm_head
    return ParamCount(total=total, non_embedding=total - embedding - lm_head)


def flops(arch: Arch, batch: int, seq_len: int, include_lm_head: bool = True) -> int:
    """Forward FLOPs (2 x MACs of matrix products) at `batch` x `seq_len` tokens.

    `include_lm_head` only matters for decoders (encoders have none).
    """
    if batch <= 0 or seq_len <= 0:
        raise ValueError(f"batch and seq_len must be > 0, got batch={batch}, seq_len={seq_len}")
    h, a, kv, f = arch.hidden_size, arch.attention_width, arch.kv_width, arch.intermediate_size
    tokens = batch * seq_len
    attention = 4 * batch * arch.num_heads * seq_len * seq_len * arch.head_dim
    if arch.family == "encoder":
        per_layer = 2 * tokens * (3 * h * a + a * h + 2 * h * f) + attention
        return arch.num_layers * per_layer + 2 * batch * h * h
    per_layer = 2 * tokens * (h * a + 2 * h * kv + a * h + 3 * h * f) + attention
    lm_head = 2 * tokens * h * arch.vocab_size if include_lm_head else 0
    return arch.num_layers * per_layer + lm_head


COSTS = ("params", "params_non_embedding", "flops")  # the names `costs` returns


def costs(arch: Arch, batch: int, seq_len: int) -> dict[str, float]:
    """The cost objectives of a search, by name: params, params_non_embedding, and FLOPs of one
    forward pass at batch x seq_len."""
    count = params(arch)
    return {"params": count.total, "params_non_embedding": count.non_embedding, "flops": flops(arch, batch, seq_len)}
