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
sys.path.insert(0, os.path.dirname(__file__))

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
