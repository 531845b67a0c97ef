"""`nas finetune` on an exported student and on a teacher (real Trainer, real data)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from conftest import TINY_ENCODER, tiny_run_config
from nas.config import parse_config
from nas.export import export
from nas.finetune import finetune, macro_f1
from nas.search import run_search
from nas.train import run_train


def test_macro_f1_hand_computed():
    pred, gold = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 2, fp 0, fn 1 -> 4/5
    assert macro_f1(pred, gold) == pytest.approx((2 / 3 + 4 / 5) / 2)


@pytest.mark.slow
def test_finetune_exported_student_attaches_result_to_its_trial(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["search"]["trials"] = 2
    config = parse_config(raw)
    run_train(config, subspaces=["small"], progress=False)
    [result] = run_search(config, subspaces=["small"])
    study = optuna.load_study(study_name=result.study_name, storage=config.storage_url)
    trial = study.best_trials[0]
    student = export(config.storage_url, tmp_path / "student", trial_id=trial._trial_id)
    outcome = finetune(str(student), "offline:movie-reviews", "text", "label", epochs=1, seq_len=32,
                       batch_size=16, max_examples=200, seed=0)
    assert (outcome.train_examples, outcome.test_examples) == (160, 20)
    assert 0.0 <= outcome.metrics["test_accuracy"] <= 1.0 and 0.0 <= outcome.metrics["test_macro_f1"] <= 1.0
    assert json.loads((student / "finetune-classification.json").read_text())["metrics"] == outcome.metrics
    attached = optuna.load_study(study_name=result.study_name, storage=config.storage_url).user_attrs
    assert attached[f"finetune:{trial._trial_id}"]["metrics"] == outcome.metrics


@pytest.mark.slow
def test_finetune_teacher_and_causal_lm(tmp_path):
    outcome = finetune("offline:minilm-l6", "offline:movie-reviews", "text", "label", epochs=1, seq_len=32,
                       batch_size=16, max_examples=100, seed=1, output_dir=tmp_path / "out")
    assert outcome.model == "offline:minilm-l6" and outcome.test_examples == 10
    from conftest import TINY_DECODER, save_tiny_teacher

    decoder = save_tiny_teacher(TINY_DECODER, tmp_path / "dec")
    lm = finetune(decoder, "offline:movie-reviews", "text", None, task="causal-lm", epochs=1, seq_len=32,
                  batch_size=8, max_examples=60, seed=0)
    assert lm.metrics["test_perplexity"] == pytest.approx(np.exp(lm.metrics["test_loss"]))
    with pytest.raises(Exception, match="label_column: got 'stars'"):
        finetune(decoder, "offline:movie-reviews", "text", "stars", epochs=1, max_examples=20)
