from __future__ import annotations

import torch
from conftest import TINY_DECODER, TINY_ENCODER

from supernet.hf_models import build_model
from supernet.importance import head_order, measure_importance, reorder_by_importance
from supernet.registry import build_supernet


def test_head_order_keeps_groups():
    imp = torch.tensor([0.1, 0.9, 0.5, 0.2, 0.3, 0.8])  # 3 KV groups of 2 heads
    q_perm, kv_perm = head_order(imp, 3)
    assert kv_perm.tolist() == [2, 0, 1]  # group sums 1.0, 0.7, 1.1
    assert q_perm.tolist() == [5, 4, 1, 0, 2, 3]  # groups in that order, best head first
    assert sorted(q_perm.tolist()) == list(range(6))
    for new_pos, old_head in enumerate(q_perm.tolist()):
        assert old_head // 2 == kv_perm[new_pos // 2].item()


def test_reordering_preserves_the_full_model_and_sorts_units():
    for arch in (TINY_ENCODER, TINY_DECODER):
        torch.manual_seed(0)
        teacher = build_model(arch)
        net = build_supernet(teacher).eval()
        ids = torch.randint(0, arch.vocab_size, (3, 10))
        mask = torch.ones_like(ids)
        with torch.no_grad():
            before = net(ids, mask)
        importance = measure_importance(net, [{"input_ids": ids, "attention_mask": mask}])
        reorder_by_importance(net, importance)
        with torch.no_grad():
            after = net(ids, mask)
        ref, out = (before.logits, after.logits) if arch.family == "decoder" else (before.hidden, after.hidden)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        again = measure_importance(net, [{"input_ids": ids, "attention_mask": mask}])
        for layer in again:
            assert torch.all(layer.neurons[:-1] >= layer.neurons[1:] - 1e-6)
            if arch.family == "encoder":
                assert torch.all(layer.heads[:-1] >= layer.heads[1:] - 1e-6)
