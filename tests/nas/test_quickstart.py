"""`nas quickstart` end to end on a tiny offline run (the real command, shrunk by --out config)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import TINY_ENCODER, tiny_run_config


@pytest.mark.slow
@pytest.mark.integration
def test_quickstart_runs_and_reuses(tmp_path):
    # A pre-written run config in --out is reused by quickstart: here, a tiny teacher and 1 step.
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["run_dir"] = str(tmp_path / "qs")
    raw["search"]["trials"] = 3
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "config.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "nas.cli", "quickstart", "--out", str(tmp_path / "qs"), "--no-progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Pareto front" in first.stdout and "exported student" in first.stdout
    for path in ("config.yaml", "study.db", "front.png", "student/model.safetensors", "student/README.md",
                 "supernets/small/train.jsonl"):
        assert (tmp_path / "qs" / path).exists(), path
    before = (tmp_path / "qs" / "student" / "model.safetensors").stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "qs" / "student" / "model.safetensors").stat().st_mtime_ns == before  # reused, not redone


@pytest.mark.slow
def test_decoder_quickstart_distils_the_chosen_student_and_its_export_generates_like_the_supernet(tmp_path):
    import json

    import torch
    from conftest import TINY_DECODER

    from nas.config import load_config
    from nas.quickstart import export_matches_supernet, quickstart
    from nas.run import open_run
    from supernet.hf_models import MODEL_CLASS

    raw = tiny_run_config(tmp_path, TINY_DECODER, steps=2, teacher_top_k=16,
                          loss={"relation": {"weight": 0.0}, "logits": "forward_kl"})
    raw["run_dir"] = str(tmp_path / "qs")
    raw["space"] = {"partitions": 1}
    raw["search"] = {"trials": 3, "seq_len": 16, "eval_batches": 2, "objectives": ["lm_loss", "flops"]}
    raw["student"] = {"budget_ratio": 1.2, "distill_steps": 2}
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "config.yaml").write_text(yaml.safe_dump(raw))
    result = quickstart("decoder", tmp_path / "qs", progress=False)
    assert result.student_point is not None and result.export_parity is True
    record = json.loads((tmp_path / "qs" / "student" / "distilnas.json").read_text())
    assert record["steps"] == 2 and record["source"] == f"student:{tmp_path / 'qs' / 'searched-student'}"
    assert set(result.samples) == {"teacher", "student"} and len(result.samples["student"]) == 3
    assert {"train supernets", "search", "export", "distill student", "samples"} <= set(result.stage_seconds)
    # The check can fail: a corrupted export generates differently from the supernet.
    searched = tmp_path / "qs" / "searched-student"
    model = MODEL_CLASS["decoder"].from_pretrained(searched)
    with torch.no_grad():
        model.model.layers[-1].mlp.down_proj.weight.mul_(-50.0)
    model.save_pretrained(searched)
    run = open_run(load_config(tmp_path / "qs" / "config.yaml"), save_config=False)
    assert export_matches_supernet(run, result.student_point, searched) is False


@pytest.mark.slow
def test_quickstart_chooses_in_the_band_that_holds_the_budget_when_asked(tmp_path):
    import optuna

    from nas.config import load_config
    from nas.export import best_under
    from nas.quickstart import choice_studies, quickstart
    from nas.run import open_run
    from nas.search.evaluate import Measurement, record
    from nas.search.study import study_name
    from search_spaces import costs, flops

    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["run_dir"] = str(tmp_path / "qs")
    raw["search"]["trials"] = 6
    raw["student"] = {"budget_ratio": 1.5, "choose_in": "budget_band"}
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "config.yaml").write_text(yaml.safe_dump(raw))
    result = quickstart("encoder", tmp_path / "qs", progress=False)
    config = load_config(tmp_path / "qs" / "config.yaml")
    run = open_run(config, save_config=False)
    budget, batch, seq = result.budget_flops, config.search.batch_size, config.search.seq_len
    band = run.space.band_holding(budget, lambda a: flops(a, batch, seq))
    assert choice_studies(config, run, budget) == [study_name(config, band)]
    every = config.model_copy(update={"student": config.student.model_copy(update={"choose_in": "any_band"})})
    assert choice_studies(every, run, budget) == [study_name(config, s) for s in run.space.subspaces]

    # Plant, in the other band's study, a member under the budget that beats every trial: chosen
    # across bands, it would be the student; chosen in the budget's band, it must not be.
    other = next(s for s in run.space.subspaces if s != band)
    study = optuna.load_study(study_name=study_name(config, other), storage=config.storage_url)
    tried = {t.user_attrs.get("arch_id") for t in study.trials}
    planted = next(a for a in other if flops(a, batch, seq) <= budget and a.id not in tried)
    trial = study.ask()
    for key, value in {"arch": planted.to_dict(), "arch_id": planted.id, "subspace": other.name}.items():
        trial.set_user_attr(key, value)
    m = Measurement(planted, {**costs(planted, batch, seq), "relation_kd": 0.0})
    record(trial, m, config.search.budgets)
    study.tell(trial, [m.objectives[o.name] for o in config.search.objectives])
    assert best_under(config.storage_url, ("flops", budget)).arch_id == planted.id  # any_band would take it

    again = quickstart("encoder", tmp_path / "qs", progress=False)
    in_band = best_under(config.storage_url, ("flops", budget), [study_name(config, band)])
    assert again.student_point is not None and again.student_point.subspace == band.name
    assert again.student_point.trial_id == in_band.trial_id and in_band.arch_id != planted.id
