"""The on-disk teacher logit cache: exact at k = V, each row computed once, torn rows recomputed,
and a training run through it matches the live teacher's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.losses import TopKLogProbs, forward_kl, forward_kl_top_k
from supernet.teacher_cache import CachedTeacher, approximation_kl, top_k_log_probs


def test_the_rebuilt_distribution_is_exact_at_full_k_and_keeps_the_top_k_exactly():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 50) * 3
    full = torch.log_softmax(logits, -1)
    torch.testing.assert_close(TopKLogProbs(*top_k_log_probs(logits, 50), 50).dense(), full, atol=1e-6, rtol=0)
    values, ids = top_k_log_probs(logits, 8)
    rebuilt = TopKLogProbs(values, ids, 50).dense()
    torch.testing.assert_close(rebuilt.gather(-1, ids), full.gather(-1, ids))  # the kept ones are exact
    torch.testing.assert_close(rebuilt.logsumexp(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)  # a distribution
    errors = [approximation_kl(logits, k) for k in (1, 4, 16, 50)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.1 and errors[-1] < 1e-6


@pytest.mark.parametrize("k", [1, 7, 64, 300])
@pytest.mark.parametrize("stored", ["fp32", "fp16", "fp16 peaked"])
def test_forward_kl_from_the_top_k_equals_forward_kl_on_the_rebuilt_distribution_in_value_and_gradient(k, stored):
    # The training path reads the cache as stored; the dense rebuild is the definition it must match,
    # over real positions only (the padded one is masked out of both). "fp16": values as the cache
    # stores them (their mass off 1 by rounding); "peaked": a teacher sure enough that the top mass
    # reaches the clamp.
    torch.manual_seed(k)
    logits = torch.randn(3, 6, 300) * (40 if stored == "fp16 peaked" else 4)
    values, ids = top_k_log_probs(logits, k)
    if stored != "fp32":
        values = values.half().float()
    teacher = TopKLogProbs(values, ids, 300)[:, :-1]
    mask = torch.ones(3, 5)
    mask[2, 4] = 0
    grads = []
    for loss in (lambda s: forward_kl(s, teacher.dense(), mask), lambda s: forward_kl_top_k(s, teacher, mask)):
        student = (torch.randn(3, 5, 300, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()
        value = loss(student)
        value.backward()
        grads.append((value.detach(), student.grad))
    (dense_value, dense_grad), (top_value, top_grad) = grads
    assert dense_value > 0.1
    torch.testing.assert_close(top_value, dense_value, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(top_grad, dense_grad, atol=1e-7, rtol=1e-4)
    assert top_grad[2, 4].abs().max() == 0  # the masked position gets no gradient
    with pytest.raises(ValueError, match="the student predicts 301 tokens, the teacher's cache holds .* 300"):
        forward_kl_top_k(torch.zeros(3, 5, 301), teacher, mask)


@pytest.mark.parametrize("logits", ["forward_kl", "reverse_kl", "atkd"])
def test_a_sub_network_scores_the_same_against_cached_top_k_targets_as_against_their_dense_rebuild(
        logits, tiny_decoder_arch):
    from supernet.config import LossConfig
    from supernet.distill import TeacherTargets, subnet_losses
    from supernet.hf_models import build_model
    from supernet.registry import build_supernet

    torch.manual_seed(0)
    student = build_supernet(build_model(tiny_decoder_arch)).eval()
    vocab = tiny_decoder_arch.vocab_size
    ids = torch.randint(0, vocab, (2, 9), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    cached = TopKLogProbs(*top_k_log_probs(torch.randn(2, 9, vocab) * 3, 16), vocab)
    loss = LossConfig(logits=logits, relation={"weight": 0.0})
    arch = tiny_decoder_arch.replace(num_layers=1)
    from_cache = subnet_losses(student, arch, batch, TeacherTargets(None, cached, None), loss, relation_heads=2)
    from_dense = subnet_losses(student, arch, batch, TeacherTargets(None, cached.dense(), None), loss,
                               relation_heads=2)
    assert from_dense["logit_kd"] > 0.1
    torch.testing.assert_close(from_cache["logit_kd"], from_dense["logit_kd"], atol=1e-5, rtol=1e-5)


@pytest.fixture
def cached_setup(tmp_path, tiny_decoder_arch):
    from conftest import tiny_run_config

    from nas.config import parse_config
    from nas.run import load_data, load_teacher_net, open_run

    raw = tiny_run_config(tmp_path, tiny_decoder_arch)
    run = open_run(parse_config(raw))
    data = load_data(run)
    teacher = load_teacher_net(run, torch.device("cpu"))
    return run, data, teacher, tmp_path / "cache"


def test_each_row_runs_the_teacher_once_and_a_torn_row_is_recomputed(cached_setup):
    run, data, teacher, directory = cached_setup
    vocab = teacher.full_arch.vocab_size
    cache = CachedTeacher(teacher, data, directory, vocab)
    batch = data.train_batch(0, 0, 1, 4, seed=0)
    live = torch.log_softmax(teacher(batch["input_ids"], batch["attention_mask"]).logits, -1)
    first = cache.log_probs(batch).dense()
    # fp16 storage: log-probabilities near -10 round to a spacing of 2**-7, so within 2**-8.
    torch.testing.assert_close(first, live, atol=2**-8, rtol=0)
    assert cache.computed_rows == 4
    again = CachedTeacher(teacher, data, directory, vocab)  # a new process reads from disk
    torch.testing.assert_close(again.log_probs(batch).dense(), first, atol=0, rtol=0)
    assert again.computed_rows == 0
    # A write torn before the flag: garbage values, flag unset -> recomputed, not trusted.
    row = int(batch["rows"][1])
    again.values[row] = np.float16(7.0)
    again.filled[row] = False
    torch.testing.assert_close(again.log_probs(batch).dense(), first, atol=0, rtol=0)
    assert again.computed_rows == 1
    held = data.held_out_batches(2, 1)[0]
    assert int(held["rows"][0]) == data.train["input_ids"].shape[0]  # held-out rows follow the train rows
    with pytest.raises(ValueError, match="teacher_top_k: got 0"):
        CachedTeacher(teacher, data, directory / "other", 0)


def test_training_through_the_cache_matches_the_live_teacher_and_fills_only_the_rows_used(tmp_path, tiny_decoder_arch):
    from conftest import tiny_run_config

    from nas.config import parse_config
    from nas.train import run_train

    losses = {}
    for name, top_k in (("live", None), ("cached", 30522)):
        raw = tiny_run_config(tmp_path / name, tiny_decoder_arch, steps=3, checkpoint_every=3, eval_every=3,
                              n_random=0, teacher_top_k=top_k)
        raw["space"] = {"partitions": 1}
        raw["train"]["loss"] = {"relation": {"weight": 0.0}, "logits": "forward_kl"}
        config = parse_config(raw)
        run_train(config, progress=False)
        log = [
            json.loads(line)
            for line in (Path(config.run_dir) / "supernets" / "full" / "train.jsonl").read_text().splitlines()
        ]
        losses[name] = [r["logit_kd"] for r in log]
        if top_k:
            assert "relation_kd" not in log[0]  # relation weight 0 and a cache: no teacher forward at all
            from nas.run import load_data, open_run

            data = load_data(open_run(config, save_config=False))
            n_train, n_held = len(data.train["input_ids"]), len(data.held_out["input_ids"])
            (directory,) = (Path(config.run_dir) / "teacher-cache").iterdir()
            filled = np.load(directory / "filled.npy")
            # 3 steps x 4 distinct train rows; the held-out rows of the eval batches; nothing else.
            assert filled[:n_train].sum() == 3 * 4
            assert filled[n_train:].sum() == min(n_held, 4 * config.train.eval_batches)
    np.testing.assert_allclose(losses["cached"], losses["live"], atol=2e-3)
