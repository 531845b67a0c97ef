"""One distillation objective, used by training and by the search's quality proxy.

`teacher_targets` runs the teacher once per batch; `subnet_losses` scores one sub-network
against those targets. Training sums `subnet_losses` over the sandwich set; evaluation averages
it over fixed held-out batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from search_spaces import Arch
from supernet.config import LossConfig
from supernet.losses import (
    RelationTargets,
    TopKLogProbs,
    atkd,
    forward_kl,
    forward_kl_top_k,
    hidden_mse,
    lm_loss,
    relation_loss,
    relation_targets,
    reverse_kl,
)
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher


@dataclass
class TeacherTargets:
    """What the teacher contributes to one batch; computed once, shared by every sub-network."""

    relations: RelationTargets | None  # None: a cached teacher with the relation loss off
    logits: Tensor | TopKLogProbs | None  # decoders, when a logit loss is on: (B, T, V), or as cached
    hidden: Tensor | None  # (B, T, H) when hidden MSE is on


@torch.no_grad()
def teacher_targets(teacher: SuperLM | CachedTeacher, batch: dict[str, Tensor], loss: LossConfig,
                    relation_heads: int) -> TeacherTargets:
    """The teacher (a frozen SuperLM at its full shape) on one batch. A `CachedTeacher` reads its
    next-token distributions from disk and runs the teacher only for what the cache does not hold
    (relations when their weight is above 0, hidden states): with logit loss alone, no forward."""
    cached = isinstance(teacher, CachedTeacher)
    net = teacher.teacher if isinstance(teacher, CachedTeacher) else teacher
    decoder = net.FAMILY == "decoder"
    need_logits = decoder and loss.logits != "none"
    logits = teacher.log_probs(batch) if isinstance(teacher, CachedTeacher) and need_logits else None
    if cached and loss.relation.weight == 0 and loss.hidden_mse_weight == 0:
        return TeacherTargets(None, logits, None)
    kwargs = {"compute_logits": need_logits and not cached} if decoder else {}
    out = net(batch["input_ids"], batch["attention_mask"], capture_layer=loss.relation.teacher_layer, **kwargs)
    assert out.qkv is not None  # capture_layer was given
    rel = relation_targets(out.qkv, batch["attention_mask"], relation_heads, loss.relation.kind, causal=decoder)
    if not cached and need_logits:
        logits = out.logits
    return TeacherTargets(rel, logits, out.hidden if loss.hidden_mse_weight > 0 else None)


def subnet_losses(supernet: SuperLM, arch: Arch, batch: dict[str, Tensor], targets: TeacherTargets | None,
                  loss: LossConfig, relation_heads: int, with_lm_loss: bool = False) -> dict[str, Tensor]:
    """The losses of sub-network `arch` on `batch`: `relation_kd`, and for decoders `logit_kd`
    (when configured) and `lm_loss` (when asked, or weighted into training by `loss.lm_weight`);
    `total` is the weighted training loss.
    Without targets (teacher-free training) the only loss is the decoder's `lm_loss`."""
    supernet.set_active(arch)
    decoder = supernet.FAMILY == "decoder"
    if targets is None:
        if not decoder:
            raise ValueError("train.loss.kind: 'lm' (teacher-free) needs a decoder; encoders have no LM head here")
        out = supernet(batch["input_ids"], batch["attention_mask"], compute_logits=True)
        value = lm_loss(out.logits, batch["input_ids"], batch["attention_mask"])
        return {"lm_loss": value, "total": value}
    with_lm_loss = with_lm_loss or loss.lm_weight > 0
    need_logits = decoder and (targets.logits is not None or with_lm_loss)
    kwargs = {"compute_logits": need_logits} if decoder else {}
    mask = batch["attention_mask"]
    out = supernet(batch["input_ids"], mask, capture_layer=-1 if targets.relations is not None else None, **kwargs)
    parts: dict[str, Tensor] = {}
    total = torch.zeros((), device=mask.device)
    if targets.relations is not None:
        assert out.qkv is not None
        parts["relation_kd"] = relation_loss(out.qkv, targets.relations, relation_heads, loss.relation.kind)
        total = total + loss.relation.weight * parts["relation_kd"]
    if targets.logits is not None and out.logits is not None:
        # Position t predicts token t+1 in both models; compare over real (t, t+1) pairs.
        s, t = out.logits[:, :-1], targets.logits[:, :-1]
        pair_mask = mask[:, 1:] * mask[:, :-1]
        if loss.logits == "forward_kl":  # from a cache, without building the teacher's (B, T, V) tensor
            parts["logit_kd"] = (forward_kl_top_k if isinstance(t, TopKLogProbs) else forward_kl)(s, t, pair_mask)
        else:  # these read every token's teacher probability
            t = t.dense() if isinstance(t, TopKLogProbs) else t
            if loss.logits == "reverse_kl":
                parts["logit_kd"] = reverse_kl(s, t, pair_mask)
            else:
                parts["logit_kd"] = atkd(s, t, batch["input_ids"][:, 1:], pair_mask, loss.atkd_easy_weight,
                                         loss.atkd_hard_weight, loss.atkd_hard_quantile)
        total = total + loss.logits_weight * parts["logit_kd"]
    if targets.hidden is not None:
        parts["hidden_mse"] = hidden_mse(out.hidden, targets.hidden, mask)
        total = total + loss.hidden_mse_weight * parts["hidden_mse"]
    if with_lm_loss and out.logits is not None:
        parts["lm_loss"] = lm_loss(out.logits, batch["input_ids"], mask)
        if loss.lm_weight > 0:  # reported either way; in the total only when weighted in
            total = total + loss.lm_weight * parts["lm_loss"]
    parts["total"] = total
    return parts


@torch.no_grad()
def evaluate(
    supernet: SuperLM,
    arch: Arch,
    batches: list[dict[str, Tensor]],
    targets: list[TeacherTargets] | list[None],
    loss: LossConfig,
    relation_heads: int,
) -> dict[str, float]:
    """Mean held-out losses of `arch` with inherited weights over fixed batches (same batches,
    same order, for every candidate)."""
    sums: dict[str, float] = {}
    for batch, target in zip(batches, targets):
        parts = subnet_losses(
            supernet, arch, batch, target, loss, relation_heads, with_lm_loss=supernet.FAMILY == "decoder"
        )
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    return {k: v / len(batches) for k, v in sums.items()}
