"""SuperBert: the weight-sharing supernet of BERT-family encoders (`BertModel`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers.activations import ACT2FN

from supernet.superlm import LMOutput, Slice, SuperLM


class SuperBert(SuperLM):
    FAMILY = "encoder"
    LAYER_PREFIX = "encoder.layer."
    GLOBAL_WEIGHTS = {
        "embeddings.word_embeddings.weight": Slice.EMBEDDING,
        "embeddings.position_embeddings.weight": Slice.EMBEDDING,
        "embeddings.token_type_embeddings.weight": Slice.EMBEDDING,
        "embeddings.LayerNorm.weight": Slice.HIDDEN,
        "embeddings.LayerNorm.bias": Slice.HIDDEN,
        "pooler.dense.weight": Slice.SQUARE,
        "pooler.dense.bias": Slice.HIDDEN,
    }
    LAYER_WEIGHTS = {
        "attention.self.query.weight": Slice.Q_PROJ,
        "attention.self.query.bias": Slice.Q_BIAS,
        # BERT has no KV grouping: key and value have as many heads as the query.
        "attention.self.key.weight": Slice.Q_PROJ,
        "attention.self.key.bias": Slice.Q_BIAS,
        "attention.self.value.weight": Slice.Q_PROJ,
        "attention.self.value.bias": Slice.Q_BIAS,
        "attention.output.dense.weight": Slice.O_PROJ,
        "attention.output.dense.bias": Slice.HIDDEN,
        "attention.output.LayerNorm.weight": Slice.HIDDEN,
        "attention.output.LayerNorm.bias": Slice.HIDDEN,
        "intermediate.dense.weight": Slice.FFN_IN,
        "intermediate.dense.bias": Slice.FFN_BIAS,
        "output.dense.weight": Slice.FFN_OUT,
        "output.dense.bias": Slice.HIDDEN,
        "output.LayerNorm.weight": Slice.HIDDEN,
        "output.LayerNorm.bias": Slice.HIDDEN,
    }

    def _norm(self, x: Tensor, name: str) -> Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.active(name + ".weight"), self.active(name + ".bias"),
                            self.hf_config.layer_norm_eps)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, capture_layer: int | None = None) -> LMOutput:
        """input_ids, attention_mask, token_type_ids: (B, T). `capture_layer` (an index into the
        active layers, negative from the end) returns that layer's Q, K, V projections."""
        a = self.arch
        B, T = input_ids.shape
        act = ACT2FN[self.hf_config.hidden_act]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(T, device=input_ids.device)
        x = (F.embedding(input_ids, self.active("embeddings.word_embeddings.weight"))
             + F.embedding(positions, self.active("embeddings.position_embeddings.weight"))[None]
             + F.embedding(token_type_ids, self.active("embeddings.token_type_embeddings.weight")))
        x = self._norm(x, "embeddings.LayerNorm")  # (B, T, h)
        # Keys that are padding get no attention: (B, 1, 1, T) boolean, True = attend.
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        capture = None if capture_layer is None else range(len(self.layers))[capture_layer]
        qkv = None
        for j, i in enumerate(self.layers):
            p = f"{self.LAYER_PREFIX}{i}."
            q = F.linear(
                x, self.active(p + "attention.self.query.weight"), self.active(p + "attention.self.query.bias")
            )
            k = F.linear(x, self.active(p + "attention.self.key.weight"), self.active(p + "attention.self.key.bias"))
            v = F.linear(
                x, self.active(p + "attention.self.value.weight"), self.active(p + "attention.self.value.bias")
            )
            if j == capture:
                qkv = (q, k, v)  # (B, T, a*d) each
            heads = lambda t: t.view(B, T, a.num_heads, a.head_dim).transpose(1, 2)  # noqa: E731  (B, a, T, d)
            ctx = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask)
            ctx = ctx.transpose(1, 2).reshape(B, T, a.attention_width)
            if self.observer:
                self.observer(i, "heads", ctx)
            attn_out = F.linear(
                ctx, self.active(p + "attention.output.dense.weight"), self.active(p + "attention.output.dense.bias")
            )
            x = self._norm(attn_out + x, p + "attention.output.LayerNorm")
            inner = act(
                F.linear(x, self.active(p + "intermediate.dense.weight"), self.active(p + "intermediate.dense.bias"))
            )
            if self.observer:
                self.observer(i, "neurons", inner)
            ffn_out = F.linear(inner, self.active(p + "output.dense.weight"), self.active(p + "output.dense.bias"))
            x = self._norm(ffn_out + x, p + "output.LayerNorm")
        pooled = torch.tanh(F.linear(x[:, 0], self.active("pooler.dense.weight"), self.active("pooler.dense.bias")))
        return LMOutput(hidden=x, qkv=qkv, pooled=pooled)
