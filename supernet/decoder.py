"""SuperLlama: the weight-sharing supernet of Llama-family decoders (`LlamaForCausalLM`):
grouped-query attention, RoPE, RMSNorm, SwiGLU, tied or untied LM head."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers.activations import ACT2FN
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from search_spaces import Arch
from supernet.hf_models import student_config
from supernet.superlm import LMOutput, Slice, SuperLM


class SuperLlama(SuperLM):
    FAMILY = "decoder"
    LAYER_PREFIX = "model.layers."
    GLOBAL_WEIGHTS = {
        "model.embed_tokens.weight": Slice.EMBEDDING,
        "model.norm.weight": Slice.HIDDEN,
        "lm_head.weight": Slice.EMBEDDING,  # absent when tied to the input embedding
    }
    LAYER_WEIGHTS = {
        "self_attn.q_proj.weight": Slice.Q_PROJ,
        "self_attn.k_proj.weight": Slice.KV_PROJ,
        "self_attn.v_proj.weight": Slice.KV_PROJ,
        "self_attn.o_proj.weight": Slice.O_PROJ,
        "mlp.gate_proj.weight": Slice.FFN_IN,
        "mlp.up_proj.weight": Slice.FFN_IN,
        "mlp.down_proj.weight": Slice.FFN_OUT,
        "input_layernorm.weight": Slice.HIDDEN,
        "post_attention_layernorm.weight": Slice.HIDDEN,
    }

    @functools.lru_cache(maxsize=8)
    def _rotary(self, head_dim: int) -> LlamaRotaryEmbedding:
        # HF's own rotary module for the student's head_dim, so every RoPE variant matches.
        return LlamaRotaryEmbedding(student_config(self.arch.replace(head_dim=head_dim), self.hf_config))

    def _norm(self, x: Tensor, name: str) -> Tensor:
        # LlamaRMSNorm: statistics in fp32, weight applied in the input dtype.
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.hf_config.rms_norm_eps)
        return self.active(name) * x32.to(dtype)

    def lm_head_weight(self) -> Tensor:
        name = "model.embed_tokens.weight" if self.arch.tie_embeddings else "lm_head.weight"
        return self.active(name)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                capture_layer: int | None = None, compute_logits: bool = True) -> LMOutput:
        """input_ids, attention_mask: (B, T), right-padded. Returns logits (B, T, V) unless
        `compute_logits` is False; `capture_layer` returns that active layer's Q, K, V
        projections (before RoPE, (B, T, width))."""
        a: Arch = self.arch
        B, T = input_ids.shape
        act = ACT2FN[self.hf_config.hidden_act]
        x = F.embedding(input_ids, self.active("model.embed_tokens.weight"))  # (B, T, h)
        positions = torch.arange(T, device=input_ids.device)[None].expand(B, T)
        cos, sin = self._rotary(a.head_dim).to(x.device)(x, positions)
        # Causal mask, and padded keys masked: (B, 1, T, T) boolean, True = attend.
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()[None, None]
        if attention_mask is not None:
            mask = mask & attention_mask.bool()[:, None, None, :]
        capture = None if capture_layer is None else range(len(self.layers))[capture_layer]
        qkv = None
        group = a.num_heads // a.num_kv_heads
        for j, i in enumerate(self.layers):
            p = f"{self.LAYER_PREFIX}{i}."
            r = self._norm(x, p + "input_layernorm.weight")
            q = F.linear(r, self.active(p + "self_attn.q_proj.weight"))  # (B, T, a*d)
            k = F.linear(r, self.active(p + "self_attn.k_proj.weight"))  # (B, T, k*d)
            v = F.linear(r, self.active(p + "self_attn.v_proj.weight"))
            if j == capture:
                qkv = (q, k, v)
            qh = q.view(B, T, a.num_heads, a.head_dim).transpose(1, 2)     # (B, a, T, d)
            kh = k.view(B, T, a.num_kv_heads, a.head_dim).transpose(1, 2)  # (B, k, T, d)
            vh = v.view(B, T, a.num_kv_heads, a.head_dim).transpose(1, 2)
            qh, kh = apply_rotary_pos_emb(qh, kh, cos, sin)
            # GQA: query head n reads KV head n // group, as HF's repeat_kv does.
            kh, vh = kh.repeat_interleave(group, dim=1), vh.repeat_interleave(group, dim=1)
            ctx = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
            ctx = ctx.transpose(1, 2).reshape(B, T, a.attention_width)
            if self.observer:
                self.observer(i, "heads", ctx)
            x = x + F.linear(ctx, self.active(p + "self_attn.o_proj.weight"))
            r = self._norm(x, p + "post_attention_layernorm.weight")
            gated = act(F.linear(r, self.active(p + "mlp.gate_proj.weight"))) * F.linear(
                r, self.active(p + "mlp.up_proj.weight")
            )
            if self.observer:
                self.observer(i, "neurons", gated)
            x = x + F.linear(gated, self.active(p + "mlp.down_proj.weight"))
        x = self._norm(x, "model.norm.weight")
        logits = F.linear(x, self.lm_head_weight()) if compute_logits else None
        return LMOutput(hidden=x, logits=logits, qkv=qkv)
