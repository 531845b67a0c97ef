"""Supernet training: runs, resumes after SIGKILL to the same weights, survives divergence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_DECODER, TINY_ENCODER, tiny_run_config
from safetensors.torch import load_file

from nas.config import parse_config
from nas.train import run_train
from supernet.checkpoint import load_latest
from supernet.train import TrainingDivergedError, learning_rate


def nas_train(config_path: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DISTILNAS_KILL_AT", None)
    if kill_at:
        env["DISTILNAS_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "nas.cli", "train", str(config_path), "--no-progress",
                           "--subspace", "small"], env=env, capture_output=True, text=True, timeout=300)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    steps = sorted((run_dir / "supernets" / "small").glob("step-*"))
    return load_file(str(steps[-1] / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["train-step:3", "checkpoint-write:4"])
def test_killed_run_resumes_to_identical_weights(tmp_path, kill_at):
    cfg = tiny_run_config(tmp_path, TINY_ENCODER)
    reference, resumed = dict(cfg, run_dir=str(tmp_path / "ref")), dict(cfg, run_dir=str(tmp_path / "resumed"))
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump(reference))
    (tmp_path / "resumed.yaml").write_text(yaml.safe_dump(resumed))

    assert nas_train(tmp_path / "ref.yaml").returncode == 0
    killed = nas_train(tmp_path / "resumed.yaml", kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    ckpt_dir = tmp_path / "resumed" / "supernets" / "small"
    assert load_latest(ckpt_dir).step == 2  # the torn step-4 write (if any) is never used
    finished = nas_train(tmp_path / "resumed.yaml")
    assert finished.returncode == 0, finished.stderr
    assert "resuming at step 2" in finished.stderr
    assert not list(ckpt_dir.glob(".tmp-step-*"))  # the killed write's folder was removed
    ref, res = final_weights(tmp_path / "ref"), final_weights(tmp_path / "resumed")
    assert ref.keys() == res.keys()
    for name in ref:
        torch.testing.assert_close(res[name], ref[name], atol=0, rtol=0)


def test_decoder_training_with_atkd_and_resume_is_a_noop_when_done(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_DECODER, steps=3, loss={"logits": "atkd", "hidden_mse_weight": 0.5})
    config = parse_config(raw)
    [result] = run_train(config, subspaces=["base"], progress=False)
    assert result.step == 3 and result.checkpoint.name == "step-00000003"
    assert set(result.last_eval["largest"]) >= {"relation_kd", "logit_kd", "hidden_mse", "lm_loss", "total"}
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_eval["smallest"].values())
    before = (result.checkpoint / "model.safetensors").read_bytes()
    [again] = run_train(config, subspaces=["base"], progress=False)
    assert again.step == 3 and (again.checkpoint / "model.safetensors").read_bytes() == before


def test_divergence_skips_steps_then_stops_keeping_last_good_checkpoint(tmp_path, monkeypatch):
    import supernet.train as train_mod

    config = parse_config(tiny_run_config(tmp_path, TINY_ENCODER, steps=4, checkpoint_every=2, max_bad_steps=2))
    run_train(config, subspaces=["small"], progress=False)
    ckpt_dir = Path(config.run_dir) / "supernets" / "small"
    good = load_latest(ckpt_dir)
    # Continue to 8 steps from weights whose query projections are infinite: every loss is NaN.
    longer = parse_config({**config.model_dump(mode="json"),
                           "train": {**config.train.model_dump(mode="json"), "steps": 8}})
    real_load = train_mod.load_latest

    def load_poisoned(directory, with_optimizer=True):
        ckpt = real_load(directory, with_optimizer)
        ckpt.weights = {k: torch.full_like(v, float("inf")) if "query.weight" in k else v
                        for k, v in ckpt.weights.items()}
        return ckpt

    monkeypatch.setattr(train_mod, "load_latest", load_poisoned)
    with pytest.raises(TrainingDivergedError, match="2 consecutive steps with a NaN/inf loss"):
        run_train(longer, subspaces=["small"], progress=False)
    assert load_latest(ckpt_dir).step == good.step  # nothing written after the bad steps
    skipped = [line for line in (ckpt_dir / "train.jsonl").read_text().splitlines() if '"skipped": true' in line]
    assert len(skipped) == 2


def test_learning_rate_schedule():
    from supernet.config import TrainConfig

    cfg = TrainConfig(steps=10, lr=1.0, warmup_frac=0.2)
    assert [round(learning_rate(cfg, s), 4) for s in range(10)] == [
        0.5,
        1.0,
        1.0,
        0.875,
        0.75,
        0.625,
        0.5,
        0.375,
        0.25,
        0.125,
    ]


def test_lm_weight_adds_the_next_token_loss_to_distillation(tiny_decoder_arch):
    from supernet.config import LossConfig
    from supernet.distill import subnet_losses, teacher_targets
    from supernet.hf_models import build_model
    from supernet.losses import lm_loss
    from supernet.registry import build_supernet

    torch.manual_seed(0)
    teacher = build_supernet(build_model(tiny_decoder_arch)).eval()
    student = build_supernet(build_model(tiny_decoder_arch)).eval()  # other random weights
    ids = torch.randint(0, tiny_decoder_arch.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    arch = tiny_decoder_arch.replace(num_layers=1)
    plain = LossConfig(logits="forward_kl", relation={"weight": 0.0})
    mixed = plain.model_copy(update={"lm_weight": 0.5})
    targets = teacher_targets(teacher, batch, plain, relation_heads=2)
    without = subnet_losses(student, arch, batch, targets, plain, relation_heads=2)
    with_lm = subnet_losses(student, arch, batch, targets, mixed, relation_heads=2)
    student.set_active(arch)
    expected_lm = lm_loss(student(ids, batch["attention_mask"], compute_logits=True).logits, ids,
                          batch["attention_mask"])
    assert "lm_loss" not in without and without["total"].item() == without["logit_kd"].item()
    torch.testing.assert_close(with_lm["lm_loss"], expected_lm, atol=0, rtol=0)
    torch.testing.assert_close(with_lm["total"], without["logit_kd"] + 0.5 * expected_lm, atol=1e-6, rtol=0)


def test_lm_weight_on_an_encoder_is_refused_before_anything_is_written(tmp_path):
    from nas.run import open_run

    config = parse_config(tiny_run_config(tmp_path, TINY_ENCODER, loss={"lm_weight": 0.3}))
    with pytest.raises(ValueError, match=r"train.loss.lm_weight: got 0.3; a next-token loss needs a decoder"):
        open_run(config)
    assert not Path(config.run_dir).exists()
