"""A sub-space's SuperLM holds only its hull, and computes every member exactly as the
teacher-shaped supernet does."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_extraction_parity

from search_spaces import SearchSpace, hf_config_overrides, hull, layer_indices, params
from supernet.hf_models import build_model
from supernet.registry import build_supernet


def space_of(arch, policy, partitions):
    return SearchSpace.from_teacher({"model_type": "bert" if arch.family == "encoder" else "llama",
                                     **hf_config_overrides(arch)}, partitions=partitions, layer_policy=policy)


def test_hull_is_the_per_dimension_maximum_and_the_layers_members_run(tiny_encoder_arch):
    space = space_of(tiny_encoder_arch, "uniform", 2)
    for sub in space.subspaces:
        shape = sub.supernet_shape
        for dim in ("hidden_size", "num_heads", "head_dim", "intermediate_size"):
            assert getattr(shape.arch, dim) == max(getattr(a, dim) for a in sub.archs())
        kept = {i for a in sub.archs() for i in layer_indices("uniform", a.num_layers, tiny_encoder_arch.num_layers)}
        assert shape.layers == tuple(sorted(kept)) and shape.arch.num_layers == len(kept)
        assert all(shape.holds(a, "uniform") is None for a in sub.archs())
    small = space.subspaces[0].supernet_shape
    assert params(small.arch).total < params(tiny_encoder_arch).total  # the small box is smaller than the teacher


def test_hull_refuses_an_arch_whose_layers_it_does_not_hold(tiny_encoder_arch):
    shape = hull([tiny_encoder_arch.replace(num_layers=2)], tiny_encoder_arch, "uniform")
    assert shape.layers == (0, 3)
    assert shape.holds(tiny_encoder_arch.replace(num_layers=2), "uniform") is None
    assert "runs teacher layers [1, 2]" in shape.holds(tiny_encoder_arch.replace(num_layers=4), "uniform")
    assert "layers [1]" in shape.holds(tiny_encoder_arch.replace(num_layers=2), "first")


@pytest.mark.parametrize("family,policy", [("encoder", "uniform"), ("encoder", "every_other"),
                                           ("decoder", "uniform"), ("decoder", "first")])
def test_hull_supernet_computes_every_member_as_the_whole_one(tiny_encoder_arch, tiny_decoder_arch, family, policy):
    teacher_arch = tiny_encoder_arch if family == "encoder" else tiny_decoder_arch
    torch.manual_seed(0)
    teacher = build_model(teacher_arch)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    whole = build_supernet(teacher, policy).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, teacher_arch.vocab_size, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    for sub in space_of(teacher_arch, policy, 2).subspaces:
        net = whole.hull(sub.supernet_shape).eval()
        assert sum(w.numel() for w in net.weights().values()) == params(sub.supernet_shape.arch).total
        for arch in [sub.largest, sub.smallest, *sub.sample(3, 4)]:
            assert_extraction_parity(net, arch, ids, mask)
            whole.set_active(arch)
            net.set_active(arch)
            with torch.no_grad():
                a, b = whole(ids, mask), net(ids, mask)
            valid = mask.bool()
            out_a = a.logits if family == "decoder" else a.hidden
            out_b = b.logits if family == "decoder" else b.hidden
            assert torch.equal(out_a[valid], out_b[valid])  # the same weights, the same arithmetic
        # A hull of a hull holds the same tensors.
        again = net.hull(sub.supernet_shape)
        assert all(torch.equal(again.weights()[k], w) for k, w in net.weights().items())
