"""Extraction is exact: the stock HF model equals the active sub-network of the supernet."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_extraction_parity
from transformers import AutoModel, AutoModelForCausalLM

from search_spaces import SearchSpace, hf_config_overrides
from supernet.hf_models import build_model
from supernet.registry import UnsupportedTeacherError, build_supernet, supernet_class

TOL = dict(atol=1e-5, rtol=0)


def teacher_and_space(arch, policy="uniform"):
    torch.manual_seed(0)
    teacher = build_model(arch)
    # Random non-zero norms/biases so that a wrong slice of them would show.
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    space = SearchSpace.from_teacher({"model_type": teacher.config.model_type, **hf_config_overrides(arch)},
                                     partitions=1, layer_policy=policy)
    return teacher, space


def batch(vocab, pad=True):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        mask[1, 8:] = 0
        mask[2, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("policy", ["uniform", "autodistil", "first"])
def test_encoder_extraction_matches_supernet(tiny_encoder_arch, policy):
    teacher, space = teacher_and_space(tiny_encoder_arch, policy)
    supernet = build_supernet(teacher, policy).eval()
    ids, mask = batch(tiny_encoder_arch.vocab_size)
    for arch in [space.largest, space.smallest, *space.sample(3, 10)]:
        assert_extraction_parity(supernet, arch, ids, mask)


@pytest.mark.parametrize("tied", [False, True])
def test_decoder_extraction_matches_supernet(tiny_decoder_arch, tied):
    teacher, space = teacher_and_space(tiny_decoder_arch.replace(tie_embeddings=tied))
    supernet = build_supernet(teacher).eval()
    ids, mask = batch(tiny_decoder_arch.vocab_size)
    archs = [space.largest, space.smallest, *space.sample(5, 10)]
    assert any(a.num_kv_heads < a.num_heads for a in archs)  # GQA exercised
    for arch in archs:
        assert_extraction_parity(supernet, arch, ids, mask)


def test_full_supernet_equals_teacher(tiny_decoder_arch, tiny_encoder_arch):
    for arch in (tiny_encoder_arch, tiny_decoder_arch):
        teacher, _ = teacher_and_space(arch)
        supernet = build_supernet(teacher).eval()
        ids, _ = batch(arch.vocab_size, pad=False)
        with torch.no_grad():
            ours = supernet(ids)
            ref = teacher(input_ids=ids)
        out = ours.logits if arch.family == "decoder" else ours.hidden
        torch.testing.assert_close(out, ref.logits if arch.family == "decoder" else ref.last_hidden_state, **TOL)


def test_extracted_directory_loads_with_auto_classes(tmp_path, tiny_decoder_arch, tiny_encoder_arch):
    for arch, auto in ((tiny_encoder_arch, AutoModel), (tiny_decoder_arch, AutoModelForCausalLM)):
        teacher, space = teacher_and_space(arch)
        supernet = build_supernet(teacher).eval()
        student_arch = space.smallest
        supernet.extract(student_arch).save_pretrained(tmp_path / arch.family)
        loaded = auto.from_pretrained(tmp_path / arch.family).eval()
        supernet.set_active(student_arch)
        ids, _ = batch(arch.vocab_size, pad=False)
        with torch.no_grad():
            ours = supernet(ids)
            ref = loaded(input_ids=ids)
        out, expected = (ours.logits, ref.logits) if arch.family == "decoder" else (ours.hidden, ref.last_hidden_state)
        torch.testing.assert_close(out, expected, **TOL)


def test_set_active_rejects_archs_outside_the_supernet(tiny_encoder_arch):
    teacher, _ = teacher_and_space(tiny_encoder_arch)
    supernet = build_supernet(teacher)
    with pytest.raises(ValueError, match="arch.num_layers: got 5; the supernet allows at most 4"):
        supernet.set_active(tiny_encoder_arch.replace(num_layers=5))
    with pytest.raises(ValueError, match="arch.vocab_size"):
        supernet.set_active(tiny_encoder_arch.replace(vocab_size=7))


def test_unsupported_teacher_lists_supported_types():
    with pytest.raises(UnsupportedTeacherError, match=r"got 'gpt2'; supported: \['bert', 'llama'\]"):
        supernet_class("gpt2")


def test_supernet_does_not_share_storage_with_teacher(tiny_encoder_arch):
    teacher, _ = teacher_and_space(tiny_encoder_arch)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    supernet = build_supernet(teacher)
    with torch.no_grad():
        for w in supernet.weights().values():
            w.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
