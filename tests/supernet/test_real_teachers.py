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
    # SmolLM2's logits reach ~30 in magnitude: fp32 rounding of two attention code paths differs by
    # ~1e-4 absolute there on some CPUs (seen: 7.6e-5 on a fresh machine), the teacher check's tolerance.
    tolerance = 1e-4 if model.config.model_type == "llama" else 1e-5
    assert_extraction_parity(supernet, space["small"].sample(0, 1)[0], ids, mask, atol=tolerance)
