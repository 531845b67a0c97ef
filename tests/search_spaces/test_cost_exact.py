"""The analytic cost model equals the instantiated HF model (params) and FlopCounterMode (FLOPs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import Arch, SearchSpace, flops, params
from supernet.hf_models import build_model

BATCH, SEQ = 2, 12


def random_archs(family: str, n: int, seed: int) -> list[Arch]:
    """n architectures with random, non-prefix shapes (odd widths, GQA, tied and untied)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        heads = int(rng.integers(1, 7))
        if family == "encoder":
            head_dim = int(rng.integers(3, 17))
            kv, hidden, tie, tv = heads, heads * head_dim, False, int(rng.integers(1, 3))
        else:
            head_dim = int(rng.choice([4, 6, 8, 10, 16]))  # RoPE needs an even head_dim
            kv = int(rng.choice([d for d in range(1, heads + 1) if heads % d == 0]))
            hidden, tie, tv = heads * int(rng.integers(2, 20)), bool(rng.integers(0, 2)), 0
        out.append(Arch(
            family=family, num_layers=int(rng.integers(1, 4)), hidden_size=hidden, num_heads=heads,
            num_kv_heads=kv, head_dim=head_dim, intermediate_size=int(rng.integers(4, 100)),
            vocab_size=int(rng.integers(20, 200)), max_position=32, type_vocab_size=tv,
            tie_embeddings=tie,
        ))
    return out


def measured_flops(model, arch: Arch) -> int:
    ids = torch.randint(0, arch.vocab_size, (BATCH, SEQ))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    return counter.get_total_flops()


@pytest.mark.parametrize("family, seed", [("encoder", 1), ("decoder", 2)])
def test_params_and_flops_equal_the_hf_model(family, seed):
    for arch in random_archs(family, 20, seed=seed):
        model = build_model(arch)
        total = sum(p.numel() for p in model.parameters())
        assert params(arch).total == total, arch
        assert flops(arch, BATCH, SEQ) == measured_flops(model, arch), arch


def test_non_embedding_excludes_embeddings_and_untied_head(tiny_decoder_arch):
    arch = tiny_decoder_arch
    model = build_model(arch)
    embedding = model.model.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    assert params(arch).non_embedding == params(arch).total - embedding
    tied = arch.replace(tie_embeddings=True)
    assert params(tied).total == params(arch).total - arch.vocab_size * arch.hidden_size


def test_decoder_flops_without_lm_head(tiny_decoder_arch):
    arch = tiny_decoder_arch
    model = build_model(arch)
    ids = torch.randint(0, arch.vocab_size, (BATCH, SEQ))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.model(input_ids=ids)  # the backbone only
    assert flops(arch, BATCH, SEQ, include_lm_head=False) == counter.get_total_flops()


def test_builtin_space_counts_match_a_real_bert_model():
    space = SearchSpace.builtin("autodistil-bert-base")
    arch = space["tiny"].smallest
    assert params(arch).total == sum(p.numel() for p in build_model(arch).parameters())
