"""One small parity case on each real offline teacher (MiniLM-L6 encoder, SmolLM2-135M decoder)."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_extraction_parity

from search_spaces import SearchSpace
from supernet import teachers
from supernet.registry import build_supernet


@pytest.mark.slow
@pytest.mark.parametrize("teacher_id", ["offline:minilm-l6", "offline:smollm2-135m"])
def test_real_teacher_extraction_parity(teacher_id):
    model = teachers.load_teacher(teacher_id)
    tokenizer = teachers.load_tokenizer(teacher_id)
    space = SearchSpace.from_teacher(model.config.to_dict(), partitions=3)
    supernet = build_supernet(model).eval()
    enc = tokenizer(["a quietly brilliant film", "the plot never lands, sadly"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad():  # the full supernet is the teacher
        full = supernet(ids, mask)
        ref = model(input_ids=ids, attention_mask=mask)
    valid = mask.bool()
    if model.config.model_type == "llama":
        torch.testing.assert_close(full.logits[valid], ref.logits[valid], atol=1e-4, rtol=1e-4)
    else:
        torch.testing.assert_close(full.hidden[valid], ref.last_hidden_state[valid], atol=1e-5, rtol=0)
    # A 26-30 layer sub-network's fp32 logits (up to ~36) differ by ~3e-4 between the two attention
    # code paths on some CPUs; in float64 they agree exactly, so the weights are what is compared.
    assert_extraction_parity(supernet.double(), space["small"].sample(0, 1)[0], ids, mask)
