"""Teacher assistants: the λ formula, the candidate grid and P on hand-computed cases; the
schedule, multi-step and teacher-free training, and the joint TA+student search on tiny runs."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from conftest import TINY_DECODER, TINY_ENCODER, tiny_run_config
from optuna.trial import TrialState

from nas.assistants import candidates as ta
from nas.assistants.schedule import run_schedule
from nas.config import AUTODISC_GRID, ConfigError, parse_config
from nas.search.study import run_search
from nas.train import run_train
from search_spaces import Arch, flops, params
from supernet.train import sandwich_for_step, step_flops


def _arch(layers: int, hidden: int) -> Arch:
    return TINY_ENCODER.replace(
        num_layers=layers,
        hidden_size=hidden,
        num_heads=hidden // 16,
        num_kv_heads=hidden // 16,
        intermediate_size=2 * hidden,
    )


def _scored(cost: float, p: float, s: float, lam: float, layers: int = 1) -> ta.Scored:
    arch = _arch(layers, 16 * (1 + int(cost)))
    return ta.Scored(ta.TACandidate(s, arch, cost, s), p, ta.tradeoff(p, s, lam))


def test_tradeoff_formula_with_float_lambda():
    assert ta.tradeoff(0.6, 0.5, 0.3) == pytest.approx(0.75)
    assert ta.tradeoff(0.9, 0.1, 0.0) == pytest.approx(0.9)
    assert (
        parse_config(
            {"teacher": {"id": "x"}, "data": {"files": ["a"]}, "assistants": {"lambda": 0.3}}
        ).assistants.tradeoff
        == 0.3
    )


def test_choose_is_the_argmax_of_t_among_eligible_candidates():
    lam = 0.3
    # cost, P, sparsity -> T: (8, .90, .2) .96; (5, .80, .5) .95; (3, .75, .7) .96 but too small; (6, .85, .4) .97
    rows = [
        _scored(8, 0.90, 0.2, lam, 1),
        _scored(5, 0.80, 0.5, lam, 2),
        _scored(3, 0.75, 0.7, lam, 3),
        _scored(6, 0.85, 0.4, lam, 4),
    ]
    assert [round(r.score, 4) for r in rows] == [0.96, 0.95, 0.96, 0.97]
    chain = ta.choose(rows, target_cost=4.0)
    assert [c.candidate.cost for c in chain] == [6]
    two = ta.choose(rows, target_cost=4.0, steps=2)
    assert [c.candidate.cost for c in two] == [8, 6]  # the two best T, largest first
    assert ta.choose(rows, target_cost=9.0) == []  # none is large enough: distil directly
    # λ = 0 prefers the most accurate; a large λ the sparsest eligible one.
    assert ta.choose([_scored(8, 0.9, 0.2, 0.0, 1), _scored(5, 0.8, 0.5, 0.0, 2)], 4.0)[0].candidate.cost == 8
    assert ta.choose([_scored(8, 0.9, 0.2, 1.0, 1), _scored(5, 0.8, 0.5, 1.0, 2)], 4.0)[0].candidate.cost == 5


def test_candidate_grid_picks_the_member_nearest_in_cost():
    assert list(AUTODISC_GRID) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
    teacher = _arch(4, 64)
    pool = [_arch(layers, hidden) for layers in (1, 2, 3, 4) for hidden in (16, 32, 48, 64)]
    full = params(teacher).total
    cands = ta.candidate_grid(pool, teacher, [0.5, 0.9], "params")
    for c, s in zip(cands, (0.5, 0.9)):
        best = min(abs(math.log(params(a).total / ((1 - s) * full))) for a in pool)
        assert abs(math.log(c.cost / ((1 - s) * full))) <= best + 0.01
        assert c.sparsity == pytest.approx(1 - c.cost / full)
        assert c.cost == params(c.arch).total
    by_flops = ta.candidate_grid(pool, teacher, [0.5], "flops", batch=1, seq_len=16)[0]
    assert by_flops.cost == flops(by_flops.arch, 1, 16)


def test_top1_agreement_and_relation_performance_by_hand():
    student = torch.tensor([[[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.0, 0.0, 1.0]]])  # argmax 1, 0, 2
    teacher_top1 = torch.tensor([[1, 2, 2]])
    assert ta.top1_agreement(student, teacher_top1, torch.tensor([[1, 1, 1]])) == (2, 3)
    assert ta.top1_agreement(student, teacher_top1, torch.tensor([[1, 1, 0]])) == (1, 2)
    assert ta.relation_performance(0.0) == 1.0
    assert ta.relation_performance(math.log(2)) == pytest.approx(0.5)


def test_assistants_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"assistants.grid: got \[0.5, 1.2\]; sparsity 1.2 is outside \(0, 1\)"):
        parse_config({"teacher": {"id": "x"}, "data": {"files": ["a"]}, "assistants": {"grid": [0.5, 1.2]}})


@pytest.fixture(scope="module")
def decoder_schedule(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ta-decoder")
    raw = tiny_run_config(tmp, TINY_DECODER, steps=2)
    raw["train"]["loss"] = {"logits": "atkd"}
    raw["assistants"] = {"supernet_steps": 2, "distill_steps": 2, "grid": [0.1, 0.3, 0.45], "measure": "flops"}
    # Boxes: the "small" box's largest member is well below the teacher, so a TA fits between them
    # (the small cost band of this tiny decoder reaches 95% of the teacher's FLOPs: no TA would).
    raw["space"]["partition_by"] = "box"
    config = parse_config(raw)
    return config, run_schedule(config, progress=False)


def test_schedule_records_every_candidate_and_the_argmax_chain(decoder_schedule):
    config, schedule = decoder_schedule
    study = optuna.load_study(study_name=ta.schedule_study_name(config), storage=config.storage_url)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == len({s.candidate.arch.id for s in schedule.scored})  # one per distinct candidate
    for s in schedule.scored:
        assert 0.0 <= s.performance <= 1.0
        assert s.score == pytest.approx(s.performance + 0.2 * s.candidate.sparsity)
    for sub, target in schedule.targets.items():
        eligible = [s for s in schedule.scored if s.candidate.cost >= target]
        chain = schedule.chains[sub]
        recorded = study.user_attrs[f"chain:{sub}"]
        assert [r["arch_id"] for r in recorded["chain"]] == [c.candidate.arch.id for c in chain]
        if eligible:
            assert chain[0].score == max(s.score for s in eligible)
        else:
            assert chain == []
    assert any(schedule.chains.values())  # the small sub-space has a TA in this grid


def test_schedule_with_a_new_lambda_reuses_every_p(decoder_schedule):
    config, first = decoder_schedule
    again = run_schedule(config, lam=0.3, progress=False)
    study = optuna.load_study(study_name=ta.schedule_study_name(config), storage=config.storage_url)
    assert len(study.trials) == len({s.candidate.arch.id for s in first.scored})  # nothing re-measured
    assert [s.performance for s in again.scored] == [s.performance for s in first.scored]
    assert all(s.score == pytest.approx(s.performance + 0.3 * s.candidate.sparsity) for s in again.scored)
    assert study.user_attrs["chain:small"]["lambda"] == 0.3
    run_schedule(config, progress=False)  # back to the config's λ for the tests below


def test_training_through_the_assistant_counts_the_ta_forwards(decoder_schedule):
    config, schedule = decoder_schedule
    results = run_train(config, progress=False, via_assistant=True, subspaces=["small"])
    ta_arch = schedule.chains["small"][-1].candidate.arch
    from nas.run import open_run

    run = open_run(config, save_config=False)
    seq = 16
    expected = sum(
        step_flops(sandwich_for_step(run.space["small"], 0, step, 1), ta_arch, 4, seq, 1)
        for step in range(config.train.steps)
    )
    assert results[0].train_flops == expected
    assert results[0].checkpoint is not None and results[0].checkpoint.exists()


def test_via_assistant_without_a_schedule_fails_before_loading(tmp_path):
    config = parse_config(tiny_run_config(tmp_path, TINY_DECODER, steps=2))
    with pytest.raises(LookupError, match="no teacher-assistant schedule for sub-space 'small'.*nas schedule"):
        run_train(config, progress=False, via_assistant=True)
    assert not (tmp_path / "run" / "supernets").exists()


def test_teacher_free_training_has_no_teacher_forwards(tmp_path):
    config = parse_config(tiny_run_config(tmp_path, TINY_DECODER, steps=3))
    results = run_train(config, progress=False, teacher_free=True, subspaces=["small"])
    from nas.run import open_run

    sub = open_run(config, save_config=False).space["small"]
    expected = sum(step_flops(sandwich_for_step(sub, 0, step, 1), None, 4, 16, 1) for step in range(3))
    assert results[0].train_flops == expected
    assert set(results[0].last_eval["largest"]) == {"lm_loss", "total"}  # no distillation loss at all


def test_teacher_free_encoder_is_refused_with_the_field(tmp_path):
    config = parse_config(tiny_run_config(tmp_path, TINY_ENCODER, steps=2))
    with pytest.raises(ValueError, match="train.loss.kind: 'lm' \\(teacher-free\\) is for decoders"):
        run_train(config, progress=False, teacher_free=True)


def test_joint_search_records_ta_scale_and_student(decoder_schedule):
    config, schedule = decoder_schedule
    run_train(config, progress=False, subspaces=["small"])  # resumes: already trained above
    results = run_search(config, trials=3, subspaces=["small"], joint_assistant=True)
    assert [(r.study_name, r.complete) for r in results] == [("run:small:joint-ta", 3)]
    study = optuna.load_study(study_name="run:small:joint-ta", storage=config.storage_url)
    allowed = {0.0} | {
        s.candidate.grid_sparsity for s in schedule.scored if s.candidate.cost >= schedule.targets["small"]
    }
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.params["ta_sparsity"] in allowed
        assert t.user_attrs["eval_key"].endswith(f"|ta_sparsity={t.params['ta_sparsity']}")
        assert set(t.user_attrs["objectives"]) >= {"relation_kd", "flops"}


def test_schedule_command_prints_the_table_it_records(decoder_schedule, tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    config, schedule = decoder_schedule
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    out = subprocess.run(
        [sys.executable, "-m", "nas.cli", "schedule", str(path), "--json", "--lambda", "0.2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout)
    assert [r["arch_id"] for r in printed["candidates"]] == [s.candidate.arch.id for s in schedule.scored]
    assert printed["chains"] == {sub: [c.candidate.arch.id for c in chain] for sub, chain in schedule.chains.items()}
    assert printed["lambda"] == 0.2


def test_proxy_task_performance_is_the_dev_accuracy(tmp_path):
    rows = ["text,label"] + [f"{'good great fine' if i % 2 else 'bad awful poor'} film {i},{i % 2}" for i in range(60)]
    (tmp_path / "labelled.csv").write_text("\n".join(rows) + "\n")
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["assistants"] = {
        "supernet_steps": 1,
        "grid": [0.5],
        "proxy_task": {"data": str(tmp_path / "labelled.csv"), "epochs": 1, "seq_len": 16},
    }
    config = parse_config(raw)
    [scored] = run_schedule(config, progress=False).scored
    study = optuna.load_study(study_name=ta.schedule_study_name(config), storage=config.storage_url)
    [trial] = study.get_trials(states=(TrialState.COMPLETE,))
    assert trial.user_attrs["source"] == "proxy_task" and trial.value == scored.performance
    assert scored.performance * 6 == pytest.approx(round(scored.performance * 6))  # accuracy on the 6 dev rows
