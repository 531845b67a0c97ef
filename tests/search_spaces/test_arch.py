from __future__ import annotations

import re
import subprocess
import sys

import pytest

from search_spaces import Arch, InvalidArchError
from search_spaces.layers import layer_indices


def encoder(**kw):
    base = dict(family="encoder", num_layers=4, hidden_size=256, num_heads=8, num_kv_heads=8,
                head_dim=32, intermediate_size=1024, vocab_size=1000, max_position=128,
                type_vocab_size=2)
    return Arch(**{**base, **kw})


def decoder(**kw):
    base = dict(family="decoder", num_layers=4, hidden_size=256, num_heads=8, num_kv_heads=2,
                head_dim=48, intermediate_size=640, vocab_size=1000, max_position=128,
                tie_embeddings=True)
    return Arch(**{**base, **kw})


def test_json_round_trip_and_stable_id():
    for arch in (encoder(), decoder()):
        again = Arch.from_json(arch.to_json())
        assert again == arch
        assert again.id == arch.id
        assert hash(again) == hash(arch)
    assert encoder().id != encoder(num_layers=5).id
    assert encoder().id.startswith("eL4H256A8K8D32F1024-")


@pytest.mark.parametrize(
    "make, changes, needle",
    [
        (encoder, dict(num_heads=6, num_kv_heads=6, head_dim=42), "hidden_size % num_heads == 0"),
        (encoder, dict(head_dim=16), "head_dim == hidden_size / num_heads"),
        (encoder, dict(num_kv_heads=4), "num_kv_heads"),
        (decoder, dict(num_kv_heads=3), "num_heads % num_kv_heads == 0"),
        (decoder, dict(hidden_size=260), "hidden_size % num_heads == 0 (LlamaConfig)"),
        (decoder, dict(num_layers=0), "arch.num_layers: got 0"),
        (decoder, dict(hidden_size=True), "arch.hidden_size: got True"),
        (decoder, dict(family="rnn"), "arch.family: got 'rnn'"),
        (decoder, dict(type_vocab_size=2), "type_vocab_size"),
    ],
)
def test_rules_name_the_field(make, changes, needle):
    with pytest.raises(InvalidArchError, match=re.escape(needle)):
        make(**changes)


def test_decoder_head_dim_is_free():
    arch = decoder(head_dim=48)  # 8 * 48 = 384 != hidden 256, legal for Llama
    assert arch.attention_width == 384 and arch.kv_width == 96


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(InvalidArchError, match="unknown field"):
        Arch.from_dict({**encoder().to_dict(), "hiden_size": 3})
    data = encoder().to_dict()
    del data["vocab_size"]
    with pytest.raises(InvalidArchError, match="missing field"):
        Arch.from_dict(data)


@pytest.mark.parametrize(
    "policy, n, n_max, expected",
    [
        ("first", 3, 12, [0, 1, 2]),
        ("autodistil", 4, 12, [0, 3, 6, 9]),
        ("autodistil", 5, 12, [0, 2, 4, 7, 9]),
        ("uniform", 4, 12, [0, 4, 7, 11]),
        ("uniform", 1, 6, [5]),
        ("uniform", 6, 6, [0, 1, 2, 3, 4, 5]),
        ("every_other", 3, 6, [0, 2, 4]),
        ("every_other", 5, 6, [0, 1, 2, 3, 4]),
        ("every_other", 4, 7, [0, 2, 4, 6]),
        ("every_other", 5, 7, [0, 1, 2, 4, 6]),
    ],
)
def test_layer_policies(policy, n, n_max, expected):
    assert layer_indices(policy, n, n_max) == expected


def test_search_spaces_does_not_import_torch():
    code = "import sys, search_spaces, search_spaces.space, search_spaces.cost; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
