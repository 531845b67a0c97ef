"""Importance reordering: permute heads and FFN neurons so that leading slices keep the most
important ones, without changing what the full model computes.

Importance is measured on a few batches as activation x weight norm: a head scores the mean
L2 norm of its attention output times the norm of its columns in the output projection; an FFN
neuron the mean |activation| times the norm of its column in the down projection (the Wanda
criterion, applied to whole units). Decoders keep grouped-query structure: KV groups are sorted
by the summed importance of their query heads, then heads within each group.

Heads are permuted only when asked (`heads=True`): MiniLMv2's relation heads split the
concatenated per-head queries, keys and values in head order, so a student whose heads are
permuted computes exactly what the teacher computes yet no longer matches its relations (measured
on MiniLM-L6: relation KD 0.79 instead of 0 for the whole teacher, permuted). Where relations
are compared, FFN neurons alone are reordered (`nas.run.reorders_heads` decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from supernet.superlm import SuperLM


@dataclass
class LayerImportance:
    heads: Tensor    # (A,)
    neurons: Tensor  # (F,)


@torch.no_grad()
def measure_importance(supernet: SuperLM, batches: list[dict[str, Tensor]]) -> list[LayerImportance]:
    """Importance of every head and neuron of every layer, with the full shape active."""
    full = supernet.full_arch
    supernet.set_active(full)
    o_name = "attention.output.dense.weight" if supernet.FAMILY == "encoder" else "self_attn.o_proj.weight"
    down_name = "output.dense.weight" if supernet.FAMILY == "encoder" else "mlp.down_proj.weight"
    heads = torch.zeros(full.num_layers, full.num_heads)
    neurons = torch.zeros(full.num_layers, full.intermediate_size)
    mask: Tensor = torch.ones(1)

    def observe(layer: int, kind: str, x: Tensor) -> None:
        m = mask[..., None].to(x.dtype)
        count = m.sum().cpu()
        if kind == "heads":  # (B, T, A*D) -> per-head output norm, mean over real tokens
            per_head = x.view(*x.shape[:2], full.num_heads, full.head_dim).norm(dim=-1)
            heads[layer] += (per_head * m).sum((0, 1)).cpu() / count
        else:                # (B, T, F) -> mean |activation| over real tokens
            neurons[layer] += (x.abs() * m).sum((0, 1)).cpu() / count

    supernet.observer = observe
    try:
        for batch in batches:
            mask = batch["attention_mask"]
            supernet(batch["input_ids"], batch["attention_mask"])
    finally:
        supernet.observer = None
    out = []
    for i in range(full.num_layers):
        w_o = supernet.weights()[f"{supernet.LAYER_PREFIX}{i}.{o_name}"].float().cpu()
        w_down = supernet.weights()[f"{supernet.LAYER_PREFIX}{i}.{down_name}"].float().cpu()
        head_norm = w_o.view(w_o.shape[0], full.num_heads, full.head_dim).norm(dim=(0, 2))
        out.append(LayerImportance(heads[i] * head_norm, neurons[i] * w_down.norm(dim=0)))
    return out


def head_order(importance: Tensor, num_kv_heads: int) -> tuple[Tensor, Tensor]:
    """(query head permutation, KV head permutation), most important first. Query heads stay in
    the block of their KV group, so head n still reads KV head n // group."""
    group = importance.numel() // num_kv_heads
    by_group = importance.view(num_kv_heads, group)
    kv_perm = torch.argsort(by_group.sum(1), descending=True, stable=True)
    q_perm = torch.cat([g * group + torch.argsort(by_group[g], descending=True, stable=True) for g in kv_perm.tolist()])
    return q_perm, kv_perm


@torch.no_grad()
def reorder_by_importance(supernet: SuperLM, importance: list[LayerImportance], heads: bool = True) -> None:
    """Permute the supernet's FFN neurons, and its attention heads when `heads`, most important
    first, in place (function-preserving for the full model)."""
    full = supernet.full_arch
    A, K, D = full.num_heads, full.num_kv_heads, full.head_dim
    enc = supernet.FAMILY == "encoder"
    names = {
        "q": ["attention.self.query"] if enc else ["self_attn.q_proj"],
        "kv": ["attention.self.key", "attention.self.value"] if enc else ["self_attn.k_proj", "self_attn.v_proj"],
        "o": "attention.output.dense.weight" if enc else "self_attn.o_proj.weight",
        "ffn_in": ["intermediate.dense"] if enc else ["mlp.gate_proj", "mlp.up_proj"],
        "ffn_out": "output.dense.weight" if enc else "mlp.down_proj.weight",
    }
    w = supernet.weights()
    for i, imp in enumerate(importance):
        p = f"{supernet.LAYER_PREFIX}{i}."
        if heads:  # queries (and their KV groups), keys, values and the output projection's columns
            q_perm, kv_perm = head_order(imp.heads, K)
            if enc:
                kv_perm = q_perm  # no grouping: keys and values follow the query heads
            for base, perm, n in [(b, q_perm, A) for b in names["q"]] + [(b, kv_perm, K) for b in names["kv"]]:
                weight = w[p + base + ".weight"]
                weight.copy_(weight.view(n, D, -1)[perm].reshape(weight.shape))
                if p + base + ".bias" in w:
                    bias = w[p + base + ".bias"]
                    bias.copy_(bias.view(n, D)[perm].reshape(bias.shape))
            o = w[p + names["o"]]
            o.copy_(o.view(o.shape[0], A, D)[:, q_perm].reshape(o.shape))
        n_perm = torch.argsort(imp.neurons, descending=True, stable=True)
        for base in names["ffn_in"]:
            w[p + base + ".weight"].copy_(w[p + base + ".weight"][n_perm])
            if p + base + ".bias" in w:
                w[p + base + ".bias"].copy_(w[p + base + ".bias"][n_perm])
        down = w[p + names["ffn_out"]]
        down.copy_(down[:, n_perm])

