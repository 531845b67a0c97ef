"""Distillation losses: self-attention relations (MiniLMv2), logits (forward / reverse KL, ATKD),
hidden-state MSE, and the plain LM loss.

Masks are (B, T) with 1 for real tokens. Every loss averages over real positions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

RelationKind = Literal["kl", "mse"]


# -- relation heads -------------------------------------------------------------------------

def default_relation_heads(widths: Iterable[int], max_heads: int) -> int:
    """The largest R <= max_heads (the teacher's head count) that divides every width."""
    g = 0
    for w in widths:
        g = math.gcd(g, w)
    return max(r for r in range(1, max_heads + 1) if g % r == 0)


def check_relation_heads(heads: int, widths: Iterable[int]) -> None:
    bad = sorted({w for w in widths if w % heads})
    if bad:
        raise ValueError(f"train.loss.relation.heads: got {heads}; it must divide every attention "
                         f"width of the space, and does not divide {bad[:5]}")


# -- MiniLMv2 self-attention relations ------------------------------------------------------

def relation_scores(x: Tensor, heads: int) -> Tensor:
    """(B, T, W) -> (B, R, T, T): X Xᵀ / sqrt(d_r) per relation head, d_r = W / R."""
    B, T, W = x.shape
    d = W // heads
    xh = x.view(B, T, heads, d).transpose(1, 2)  # (B, R, T, d)
    return xh @ xh.transpose(-1, -2) / math.sqrt(d)


def relation_key_mask(mask: Tensor, causal: bool) -> Tensor:
    """(B, T) -> (B, 1, T, T) boolean: which key a query may relate to."""
    T = mask.shape[1]
    keys = mask.bool()[:, None, None, :]
    if causal:
        keys = keys & torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()
    return keys


@dataclass
class RelationTargets:
    """The teacher's Q-Q, K-K, V-V relations of one batch, computed once and shared by every
    sub-network of a training step: log-probabilities (KL) or scaled scores (MSE)."""

    relations: tuple[Tensor, Tensor, Tensor]  # each (B, R, T, T)
    key_mask: Tensor                          # (B, 1, T, T)
    query_mask: Tensor                        # (B, 1, T)


def relation_targets(teacher_qkv: tuple[Tensor, Tensor, Tensor], mask: Tensor, heads: int,
                     kind: RelationKind, causal: bool) -> RelationTargets:
    key_mask = relation_key_mask(mask, causal)
    rels = tuple(_relation(x, heads, key_mask, kind) for x in teacher_qkv)
    return RelationTargets(rels, key_mask, mask.bool()[:, None, :])  # type: ignore[arg-type]


def _relation(x: Tensor, heads: int, key_mask: Tensor, kind: RelationKind) -> Tensor:
    scores = relation_scores(x.float(), heads)
    if kind == "mse":
        return scores
    return torch.log_softmax(scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min), dim=-1)


def relation_loss(student_qkv: tuple[Tensor, Tensor, Tensor], targets: RelationTargets, heads: int,
                  kind: RelationKind = "kl") -> Tensor:
    """Sum over Q, K, V of KL(teacher relation ‖ student relation), averaged over relation heads
    and real query positions (kind="kl", MiniLMv2); or the MSE of the scaled scores over real
    (query, key) pairs (kind="mse", AutoDistil's released variant)."""
    total = torch.zeros((), device=targets.key_mask.device)
    qmask = targets.query_mask.expand(-1, heads, -1)  # (B, R, T)
    for x, teacher in zip(student_qkv, targets.relations):
        student = _relation(x, heads, targets.key_mask, kind)
        if kind == "mse":
            pairs = targets.key_mask & targets.query_mask[..., None]
            pairs = pairs.expand_as(student)
            total = total + ((student - teacher) ** 2)[pairs].mean()
        else:
            p_t = teacher.exp()
            kl = torch.where(targets.key_mask, p_t * (teacher - student), 0.0).sum(-1)  # (B, R, T)
            total = total + kl[qmask].mean()
    return total


# -- logit distillation ---------------------------------------------------------------------

def _mean(values: Tensor, mask: Tensor) -> Tensor:
    return values[mask.bool()].mean()


def forward_kl(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(p_teacher ‖ p_student) per token, averaged over real tokens. Logits (B, T, V)."""
    log_s = torch.log_softmax(student_logits.float() / temperature, -1)
    log_t = torch.log_softmax(teacher_logits.float() / temperature, -1)
    return _mean((log_t.exp() * (log_t - log_s)).sum(-1), mask)


@dataclass
class TopKLogProbs:
    """Next-token distributions as the cache holds them: per position the k largest
    log-probabilities and their token ids; every other token gets an equal share of the rest."""

    values: Tensor  # (..., k) log-probabilities
    ids: Tensor  # (..., k) token ids
    vocab_size: int

    def __getitem__(self, index: Any) -> TopKLogProbs:
        """The same positions sliced on the leading dimensions (e.g. `[:, :-1]`)."""
        return TopKLogProbs(self.values[index], self.ids[index], self.vocab_size)

    def tail_log_prob(self) -> Tensor | None:
        """(...,) the log-probability of each token outside the top k; None when k = V."""
        k = self.values.shape[-1]
        if k == self.vocab_size:
            return None
        top_mass = self.values.float().exp().sum(-1).clamp(max=1.0 - 1e-6)
        return torch.log((1.0 - top_mass) / (self.vocab_size - k))

    def dense(self) -> Tensor:
        """(..., V) log-probabilities."""
        values, ids = self.values.float(), self.ids.long()
        tail = self.tail_log_prob()
        if tail is None:
            return torch.zeros((*values.shape[:-1], self.vocab_size), device=values.device).scatter(-1, ids, values)
        return tail[..., None].expand(*values.shape[:-1], self.vocab_size).clone().scatter(-1, ids, values)


def forward_kl_top_k(student_logits: Tensor, teacher: TopKLogProbs, mask: Tensor) -> Tensor:
    """`forward_kl` against a cached top-k teacher, without building its (B, T, V) distribution.

    With p the teacher's k kept probabilities, q the student's and r the tail probability of each
    of the other V - k tokens: KL = sum_top p (log p - log q) + r ((V - k) log r - sum_rest log q),
    where sum_rest log q = sum_all log q - sum_top log q. p and r are first renormalised to sum to
    1, as `forward_kl`'s log-softmax does to the dense rebuild (fp16 storage leaves them off by
    ~1e-3), so this equals `forward_kl(s, teacher.dense(), mask)` up to rounding, at a fraction of
    its time and memory (`benchmarks/cached_kl.py` measures the ratio)."""
    if student_logits.shape[-1] != teacher.vocab_size:
        raise ValueError(f"forward_kl_top_k: the student predicts {student_logits.shape[-1]} tokens, the "
                         f"teacher's cache holds distributions over {teacher.vocab_size}; they must be equal")
    log_s = torch.log_softmax(student_logits.float(), -1)
    values = teacher.values.float()
    picked = log_s.gather(-1, teacher.ids.long())
    tail = teacher.tail_log_prob()
    rest = teacher.vocab_size - values.shape[-1]
    # log of the total mass, kept plus tail: 0 but for rounding
    log_total = values.logsumexp(-1) if tail is None else torch.logaddexp(values.logsumexp(-1), tail + math.log(rest))
    values = values - log_total[..., None]
    kl = (values.exp() * (values - picked)).sum(-1)
    if tail is not None:
        tail = tail - log_total
        kl = kl + tail.exp() * (rest * tail - (log_s.sum(-1) - picked.sum(-1)))
    return _mean(kl, mask)


def reverse_kl(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(p_student ‖ p_teacher) per token, averaged over real tokens."""
    log_s = torch.log_softmax(student_logits.float() / temperature, -1)
    log_t = torch.log_softmax(teacher_logits.float() / temperature, -1)
    return _mean((log_s.exp() * (log_s - log_t)).sum(-1), mask)


@dataclass
class ATKDTerms:
    """Per-token parts of KL(pᵗ‖pˢ) = TKD + DKD, all (B, T).

    tkd = KL(bᵗ‖bˢ) on the binary target / non-target distribution;
    dkd = UNC · KL(p̂ᵗ‖p̂ˢ) on the renormalised non-target distribution; unc = 1 − pᵗ(target).
    """

    tkd: Tensor
    dkd: Tensor
    unc: Tensor


def atkd_terms(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor) -> ATKDTerms:
    log_s = torch.log_softmax(student_logits.float(), -1)
    log_t = torch.log_softmax(teacher_logits.float(), -1)
    lt_g = log_t.gather(-1, targets[..., None]).squeeze(-1)  # log pᵗ(target), (B, T)
    ls_g = log_s.gather(-1, targets[..., None]).squeeze(-1)
    # log(1 - p) computed stably from log p.
    lt_rest = torch.log1p(-lt_g.exp().clamp(max=1 - 1e-7))
    ls_rest = torch.log1p(-ls_g.exp().clamp(max=1 - 1e-7))
    tkd = lt_g.exp() * (lt_g - ls_g) + lt_rest.exp() * (lt_rest - ls_rest)
    # Non-target distributions, renormalised: log p̂ = log p − log(1 − p(target)).
    not_target = torch.ones_like(log_t, dtype=torch.bool).scatter(-1, targets[..., None], False)
    hat_t = log_t - lt_rest[..., None]
    hat_s = log_s - ls_rest[..., None]
    kl_hat = torch.where(not_target, hat_t.exp() * (hat_t - hat_s), 0.0).sum(-1)
    unc = lt_rest.exp()
    return ATKDTerms(tkd=tkd, dkd=unc * kl_hat, unc=unc)


def atkd(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, mask: Tensor,
         easy_weight: float = 0.2, hard_weight: float = 0.8, hard_quantile: float = 0.5) -> Tensor:
    """Adaptive teaching KD (Zhong et al. 2024). Tokens whose teacher uncertainty is at or above
    the batch's `hard_quantile` (the median by default) are hard and get TKD + DKD; the easy ones
    get DKD only. loss = easy_weight · mean_easy(DKD) + hard_weight · mean_hard(TKD + DKD)."""
    t = atkd_terms(student_logits, teacher_logits, targets)
    valid = mask.bool()
    threshold = torch.quantile(t.unc[valid].detach(), hard_quantile)
    hard = valid & (t.unc >= threshold)
    easy = valid & ~hard
    loss = torch.zeros((), device=student_logits.device)
    if easy.any():
        loss = loss + easy_weight * t.dkd[easy].mean()
    if hard.any():
        loss = loss + hard_weight * (t.tkd + t.dkd)[hard].mean()
    return loss


def hidden_mse(student_hidden: Tensor, teacher_hidden: Tensor, mask: Tensor) -> Tensor:
    """MSE between the student's final hidden states (B, T, h) and the leading h channels of the
    teacher's (the channels the student's weights were sliced from)."""
    h = student_hidden.shape[-1]
    diff = (student_hidden.float() - teacher_hidden[..., :h].float()) ** 2
    return _mean(diff.mean(-1), mask)


def lm_loss(logits: Tensor, input_ids: Tensor, mask: Tensor) -> Tensor:
    """Next-token cross-entropy over real (token, next token) pairs. logits (B, T, V)."""
    shift_mask = (mask[:, 1:] * mask[:, :-1]).bool()
    return F.cross_entropy(logits[:, :-1][shift_mask].float(), input_ids[:, 1:][shift_mask])
