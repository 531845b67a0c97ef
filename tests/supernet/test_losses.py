"""Each loss on hand-computed small cases."""

from __future__ import annotations

import math

import pytest
import torch

from supernet.losses import (
    atkd,
    atkd_terms,
    check_relation_heads,
    default_relation_heads,
    forward_kl,
    hidden_mse,
    lm_loss,
    relation_loss,
    relation_targets,
    reverse_kl,
)


def test_default_relation_heads():
    assert default_relation_heads([384, 96, 128, 224], max_heads=12) == 8  # gcd 32 -> 8 <= 12
    assert default_relation_heads([576, 192, 64], max_heads=9) == 8        # gcd 64 -> 8
    assert default_relation_heads([48, 72], max_heads=12) == 12            # gcd 24 -> 12
    with pytest.raises(ValueError, match="heads: got 5; .* does not divide \\[96, 128\\]"):
        check_relation_heads(5, [96, 128, 160])


def test_relation_kl_zero_when_equal_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    qkv = tuple(torch.randn(2, 5, 8, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    for causal in (False, True):
        targets = relation_targets(qkv, mask, heads=2, kind="kl", causal=causal)
        assert relation_loss(qkv, targets, 2).item() == pytest.approx(0.0, abs=1e-6)
        other = tuple(x + 0.5 * torch.randn(x.shape, generator=g) for x in qkv)
        assert relation_loss(other, targets, 2).item() > 1e-3


def test_relation_kl_hand_computed():
    # One batch, T=2, W=1, R=1: scores = x_i x_j. Teacher x = [1, 0]: rows softmax([1,0]), [0,0].
    teacher = torch.tensor([[[1.0], [0.0]]])
    student = torch.zeros(1, 2, 1)  # all scores 0 -> uniform rows
    mask = torch.ones(1, 2)
    qkv_t = (teacher, teacher, teacher)
    targets = relation_targets(qkv_t, mask, heads=1, kind="kl", causal=False)
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    kl_row0 = float((p * (p.log() - math.log(0.5))).sum())
    expected = 3 * (kl_row0 + 0.0) / 2  # Q, K, V relations; row 1 is uniform in both
    assert relation_loss((student,) * 3, targets, 1).item() == pytest.approx(expected, rel=1e-5)
    # MSE on the scaled scores: teacher scores [[1,0],[0,0]], student zeros -> mean 1/4 per relation.
    targets = relation_targets(qkv_t, mask, heads=1, kind="mse", causal=False)
    assert relation_loss((student,) * 3, targets, 1, kind="mse").item() == pytest.approx(3 * 0.25)


def test_relation_padding_is_ignored():
    g = torch.Generator().manual_seed(1)
    qkv = tuple(torch.randn(1, 4, 4, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0]])
    targets = relation_targets(qkv, mask, 2, "kl", causal=False)
    # Changing only the padded position changes nothing.
    changed = tuple(torch.cat([x[:, :3], x[:, 3:] + 5.0], dim=1) for x in qkv)
    assert relation_loss(changed, targets, 2).item() == pytest.approx(0.0, abs=1e-6)


def test_forward_and_reverse_kl_hand_computed():
    t = torch.log(torch.tensor([[[0.5, 0.5]]]))
    s = torch.log(torch.tensor([[[0.9, 0.1]]]))
    mask = torch.ones(1, 1)
    fkl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    rkl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert forward_kl(s, t, mask).item() == pytest.approx(fkl, rel=1e-5)
    assert reverse_kl(s, t, mask).item() == pytest.approx(rkl, rel=1e-5)
    assert forward_kl(t, t, mask).item() == pytest.approx(0.0, abs=1e-7)


def test_atkd_decomposition_sums_to_kl():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 6, 11, generator=g), torch.randn(2, 6, 11, generator=g) * 2
    targets = torch.randint(0, 11, (2, 6), generator=g)
    terms = atkd_terms(s, t, targets)
    log_s, log_t = s.log_softmax(-1), t.log_softmax(-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    torch.testing.assert_close(terms.tkd + terms.dkd, kl, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(terms.unc, 1 - log_t.exp().gather(-1, targets[..., None]).squeeze(-1))


def test_atkd_hand_computed_split():
    # Two tokens, V=3, target 0. Token A: teacher sure (UNC 0.1), token B: unsure (UNC 0.6).
    t = torch.log(torch.tensor([[[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]]))
    s = torch.log(torch.tensor([[[0.6, 0.2, 0.2], [0.2, 0.6, 0.2]]]))
    targets = torch.zeros(1, 2, dtype=torch.long)
    mask = torch.ones(1, 2)
    terms = atkd_terms(s, t, targets)
    # Median of {0.1, 0.6} is 0.35: B is hard, A easy.
    expected = 0.2 * terms.dkd[0, 0] + 0.8 * (terms.tkd[0, 1] + terms.dkd[0, 1])
    assert atkd(s, t, targets, mask).item() == pytest.approx(expected.item(), rel=1e-5)
    # Hand values of token A: TKD = KL([.9,.1] || [.6,.4]); DKD = 0.1 * KL([.5,.5] || [.5,.5]) = 0.
    tkd_a = 0.9 * math.log(0.9 / 0.6) + 0.1 * math.log(0.1 / 0.4)
    assert terms.tkd[0, 0].item() == pytest.approx(tkd_a, rel=1e-4)
    assert terms.dkd[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert atkd(t, t, targets, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_atkd_easy_weight_changes_the_loss_and_ties_at_the_median_are_hard():
    # Token A (easy, UNC 0.1) has a non-zero DKD: its non-target split is [.8, .2] for the teacher
    # and [.5, .5] for the student, so the easy weight must move the loss.
    t = torch.log(torch.tensor([[[0.9, 0.08, 0.02], [0.4, 0.3, 0.3]]]))
    s = torch.log(torch.tensor([[[0.6, 0.2, 0.2], [0.2, 0.6, 0.2]]]))
    targets, mask = torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2)
    dkd_a = 0.1 * (0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5))
    assert atkd_terms(s, t, targets).dkd[0, 0].item() == pytest.approx(dkd_a, rel=1e-4)
    terms = atkd_terms(s, t, targets)
    hard_b = (terms.tkd[0, 1] + terms.dkd[0, 1]).item()
    for easy in (0.0, 0.2, 1.0):
        assert atkd(s, t, targets, mask, easy_weight=easy).item() == pytest.approx(
            easy * dkd_a + 0.8 * hard_b, rel=1e-5
        )
    # Ties: three tokens with equal UNC 0.6 and one with 0.1. The median is 0.6; "at or above"
    # makes the three tied tokens hard (mean of their TKD + DKD), the sure one easy.
    t4 = torch.log(torch.tensor([[[0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.4, 0.3, 0.3], [0.9, 0.08, 0.02]]]))
    s4 = torch.log(torch.tensor([[[0.2, 0.6, 0.2], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25], [0.6, 0.2, 0.2]]]))
    targets4, mask4 = torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 4)
    t4terms = atkd_terms(s4, t4, targets4)
    hard = (t4terms.tkd + t4terms.dkd)[0, :3].mean().item()
    assert atkd(s4, t4, targets4, mask4).item() == pytest.approx(0.2 * t4terms.dkd[0, 3].item() + 0.8 * hard, rel=1e-5)


def test_hidden_mse_and_lm_loss():
    mask = torch.tensor([[1, 1, 0]])
    teacher = torch.ones(1, 3, 4)
    student = torch.zeros(1, 3, 2)
    assert hidden_mse(student, teacher, mask).item() == pytest.approx(1.0)
    logits = torch.zeros(1, 3, 5)  # uniform -> cross-entropy log 5 on the one real pair
    assert lm_loss(logits, torch.tensor([[1, 2, 3]]), mask).item() == pytest.approx(math.log(5))
