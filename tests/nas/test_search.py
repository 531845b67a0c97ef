"""Search, Pareto queries and export on a tiny trained run (real Optuna storage, real HF models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from conftest import TINY_ENCODER, tiny_run_config
from optuna.trial import TrialState
from transformers import AutoModel

from nas.config import parse_config
from nas.run import load_trained_supernet, open_run
from nas.search.pareto import load_points, pareto_front
from nas.search.space import arch_params, free_dims, nearest_member, suggest_arch
from nas.search.study import run_search
from nas.train import run_train
from search_spaces import params

BUDGET = 3.0e6  # flops at 1 x 16 tokens: excludes the larger members of the "base" sub-space


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    raw = tiny_run_config(tmp, TINY_ENCODER, steps=2)
    raw["search"].update(budgets={"flops": BUDGET}, trials=6)
    run_train(parse_config(raw), progress=False)
    return tmp, raw


def nas(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_search_records_everything_and_pareto_reads_it(trained):
    tmp, raw = trained
    config = parse_config(raw)
    results = run_search(config)
    assert [(r.subspace, r.finished) for r in results] == [("small", 6), ("base", 6)]
    storage = config.storage_url
    points, directions = load_points(storage)
    assert directions == {"relation_kd": "minimize", "flops": "minimize"}
    studies = optuna.get_all_study_summaries(storage)
    for summary in studies:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(states=(TrialState.COMPLETE,))
        assert trials and trials[0].user_attrs.get("warm_start")  # the truncated teacher first
        assert study.metric_names == ["relation_kd", "flops"]  # optuna-dashboard labels its axes
        for t in trials:
            attrs = t.user_attrs
            assert {"arch", "arch_id", "objectives", "constraints", "feasible", "subspace", "provenance"} <= set(attrs)
            assert set(attrs["provenance"]) >= {"teacher_id", "teacher_files_sha256", "supernet_sha256",
                                                "data_fingerprint", "device", "packages"}
            assert attrs["feasible"] == (attrs["objectives"]["flops"] <= BUDGET)
            assert attrs["objectives"]["params"] == params(config_arch(attrs["arch"])).total
    front = pareto_front(points, ["relation_kd", "flops"], directions)
    assert front and all(p.feasible for p in front)
    assert any(not p.feasible for p in points)  # the budget did exclude something
    for p in front:  # nothing feasible dominates a front point
        assert not any(q.feasible and q.objectives["relation_kd"] < p.objectives["relation_kd"]
                       and q.objectives["flops"] < p.objectives["flops"] for q in points)

    out = nas(
        "pareto", "--storage", storage, "--format", "json", "--max-flops", "1e6", "--plot", str(tmp / "front.png")
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows and all(r["objectives"]["flops"] <= 1e6 for r in rows)
    assert (tmp / "front.png").stat().st_size > 1000
    table = nas("pareto", "--storage", storage)
    assert "hypervolume" in table.stdout

    # Running the same search again evaluates nothing new: the studies are at their trial count.
    again = run_search(config)
    assert [r.finished for r in again] == [6, 6]


def config_arch(d):
    from search_spaces import Arch

    return Arch.from_dict(d)


def test_export_loads_with_automodel_and_matches_the_supernet(trained):
    tmp, raw = trained
    config = parse_config(raw)
    run_search(config)
    out = nas("export", "--storage", config.storage_url, "--best-under", "flops=2e6", "--out", str(tmp / "student"))
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp / "student" / "distilnas.json").read_text())
    assert record["objectives"]["flops"] <= 2e6
    model = AutoModel.from_pretrained(tmp / "student").eval()
    run = open_run(config, save_config=False)
    supernet, _ = load_trained_supernet(run, record["subspace"], torch.device("cpu"))
    supernet.set_active(config_arch(record["arch"]))
    ids = torch.randint(0, 30522, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).last_hidden_state, supernet(ids).hidden, atol=1e-5, rtol=0)
    assert "# Student" in (tmp / "student" / "README.md").read_text()
    refused = nas(
        "export", "--storage", config.storage_url, "--trial", str(record["trial_id"]), "--out", str(tmp / "student")
    )
    assert refused.returncode == 2 and "is not empty; pass --force" in refused.stderr


def test_killed_search_resumes_without_losing_or_duplicating_trials(trained, tmp_path):
    tmp, raw = trained
    raw = {**raw, "storage": f"sqlite:///{tmp_path / 'kill.db'}", "search": {**raw["search"], "trials": 5}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "DISTILNAS_KILL_AT": "search-trial:3"}
    killed = nas("search", str(tmp_path / "run.yaml"), "--subspace", "small", env=env)
    assert killed.returncode == -9
    study = optuna.load_study(study_name=f"{Path(raw['run_dir']).name}:small", storage=raw["storage"])
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    resumed = nas("search", str(tmp_path / "run.yaml"), "--subspace", "small")
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name=study.study_name, storage=raw["storage"]).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_a_search_killed_inside_a_trial_leaves_it_with_a_heartbeat(trained, tmp_path):
    import sqlite3

    tmp, raw = trained
    db = tmp_path / "inside.db"
    raw = {**raw, "storage": f"sqlite:///{db}", "search": {**raw["search"], "trials": 3}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    killed = nas("search", str(tmp_path / "run.yaml"), "--subspace", "small",
                 env={**os.environ, "DISTILNAS_KILL_AT": "evaluate:2"})
    assert killed.returncode == -9
    with sqlite3.connect(db) as conn:  # the storage as the next search finds it
        running = conn.execute("SELECT trial_id FROM trials WHERE state = 'RUNNING'").fetchall()
        beats = conn.execute("SELECT trial_id FROM trial_heartbeats").fetchall()
    # Without a heartbeat Optuna would never find the trial stale, fail and retry it.
    assert len(running) == 1 and running[0] in beats


def test_failing_evaluation_is_recorded_and_the_search_goes_on(trained, tmp_path, monkeypatch):
    import nas.search.evaluate

    tmp, raw = trained
    raw = {**raw, "storage": f"sqlite:///{tmp_path / 'fail.db'}", "search": {**raw["search"], "trials": 4}}
    real = nas.search.evaluate.SupernetEvaluator.measure
    calls = {"n": 0}

    def flaky(self, arch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(self, arch)

    monkeypatch.setattr(nas.search.evaluate.SupernetEvaluator, "measure", flaky)
    [result] = run_search(parse_config(raw), subspaces=["small"])
    assert (result.finished, result.failed) == (4, 1)
    study = optuna.load_study(study_name=result.study_name, storage=raw["storage"])
    [failed] = study.get_trials(states=(TrialState.FAIL,))
    assert failed.user_attrs["fail_reason"].startswith("OutOfMemoryError: CUDA out of memory")


def test_suggest_arch_repairs_to_nearest_member_and_round_trips(trained):
    _, raw = trained
    run = open_run(parse_config(raw), save_config=False)
    sub = run.space["small"]
    for arch in sub.archs():
        assert suggest_arch(optuna.trial.FixedTrial(arch_params(arch, sub)), sub) == arch
    # Any suggested combination maps into the sub-space (a cost band leaves out combinations of its
    # box: those are repaired to the nearest member); a member is returned as itself.
    repaired = 0
    for hidden in sub.choices.hidden_size:
        for ffn in sub.choices.intermediate_size:
            params_ = {**{d: v[-1] for d, v in free_dims(sub).items()}, "hidden_size": hidden, "intermediate_size": ffn}
            arch = suggest_arch(optuna.trial.FixedTrial(params_), sub)
            assert arch in sub
            exact = [a for a in sub if arch_params(a, sub) == params_]
            if exact:
                assert arch == exact[0]
            else:
                repaired += 1
    assert repaired > 0  # the band does cut its box


def test_the_default_sampler_is_tpe_seeded_and_constant_liar_for_any_number_of_objectives(trained):
    from nas.config import SearchConfig
    from nas.search.trials import make_sampler

    _, raw = trained
    sub = open_run(parse_config(raw), save_config=False).space["small"]
    for objectives in (["relation_kd"], ["relation_kd", "flops"], ["relation_kd", "flops", "params"]):
        sampler = make_sampler("auto", sub, SearchConfig(objectives=objectives, seed=7))
        assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._constant_liar
        # seeded: two samplers of one seed propose the same first trial
        first = [optuna.create_study(sampler=make_sampler("auto", sub, SearchConfig(objectives=objectives, seed=7)),
                                     directions=["minimize"] * len(objectives)).ask().suggest_int("x", 0, 10 ** 6)
                 for _ in range(2)]
        assert first[0] == first[1]


def test_bad_objective_fails_before_weights_load(trained):
    _, raw = trained
    raw = {**raw, "search": {**raw["search"], "objectives": ["logit_kd", "flops"]}}
    with pytest.raises(ValueError, match="search.objectives.0.name: got 'logit_kd'; this encoder run can measure"):
        run_search(parse_config(raw))


def test_decoder_combination_outside_the_rules_is_repaired_to_the_nearest_member(tiny_decoder_arch):
    from search_spaces import SearchSpace, hf_config_overrides

    space = SearchSpace.from_teacher({"model_type": "llama", **hf_config_overrides(tiny_decoder_arch)}, partitions=1)
    sub = space.subspaces[0]
    wanted = {
        "num_layers": 4,
        "hidden_size": 72,
        "head_dim": 16,
        "num_heads": 4,
        "num_kv_heads": 3,
        "intermediate_size": 96,
    }  # 4 % 3 != 0: not a Llama shape
    trial = optuna.trial.FixedTrial(wanted)
    arch = suggest_arch(trial, sub)
    assert arch in sub and trial.user_attrs["repaired"] is True
    # The members one choice-step away: 3 heads with 3 KV heads, or 4 heads with 2.
    assert (arch.num_heads, arch.num_kv_heads) in {(3, 3), (4, 2)}
    assert (arch.num_layers, arch.hidden_size, arch.intermediate_size) == (4, 72, 96)


def test_decoder_search_records_lm_and_logit_losses(tmp_path, tiny_decoder_arch):
    raw = tiny_run_config(tmp_path, tiny_decoder_arch, steps=1, loss={"logits": "atkd"})
    raw["search"].update(objectives=["lm_loss", "logit_kd", "flops"], trials=3)
    config = parse_config(raw)
    run_train(config, subspaces=["base"], progress=False)
    [result] = run_search(config, subspaces=["base"])
    assert (result.complete, result.failed) == (3, 0)
    study = optuna.load_study(study_name=result.study_name, storage=config.storage_url)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        objectives = t.user_attrs["objectives"]
        assert {"relation_kd", "logit_kd", "lm_loss", "flops"} <= set(objectives)
        assert t.values == [objectives["lm_loss"], objectives["logit_kd"], objectives["flops"]]


def test_each_sub_space_trains_and_loads_its_hull_and_old_whole_teacher_runs_still_load(trained, tmp_path):
    from nas.run import load_teacher_net
    from search_spaces import SupernetShape
    from supernet.checkpoint import load_latest, save_checkpoint

    tmp, raw = trained
    run = open_run(parse_config(raw), save_config=False)
    sizes = []
    for sub in run.space.subspaces:
        ckpt = load_latest(run.supernet_dir(sub.name), with_optimizer=True)
        assert SupernetShape.from_dict(ckpt.state["supernet"]["shape"]) == sub.supernet_shape
        held = sum(w.numel() for w in ckpt.weights.values())
        assert held == params(sub.supernet_shape.arch).total
        # AdamW's moments have the hull's shapes (the pooler, which no loss reaches, has none).
        held_shapes = sorted(tuple(w.shape) for w in ckpt.weights.values())
        moment_shapes = [tuple(s["exp_avg"].shape) for s in ckpt.optimizer["state"].values()]
        assert moment_shapes and all(shape in held_shapes for shape in moment_shapes)
        assert sum(s["exp_avg"].numel() for s in ckpt.optimizer["state"].values()) <= held
        sizes.append(held)
    assert sizes[0] < params(run.space.teacher).total  # the small box holds less than the teacher

    small, base = run.space.subspaces
    with pytest.raises(
        ValueError, match=r"does not hold member eL\d.*\(arch\.\w+: got \d+; the supernet allows at most"
    ):
        load_trained_supernet(run, small.name, torch.device("cpu"), members=base)

    # A run written before supernets were hulls: teacher-shaped weights, no shape recorded.
    old = open_run(parse_config({**raw, "run_dir": str(tmp_path / "old")}), save_config=False)
    teacher = load_teacher_net(old, torch.device("cpu"))
    save_checkpoint(
        old.supernet_dir(small.name),
        2,
        dict(teacher.weights()),
        None,
        {"supernet": {k: v for k, v in teacher.describe().items() if k != "shape"}},
    )
    net, _ = load_trained_supernet(old, small.name, torch.device("cpu"))
    assert net.shape == SupernetShape.whole(run.space.teacher)
    ids = torch.randint(0, 30522, (2, 9))
    with torch.no_grad():
        for arch in (small.largest, small.smallest):
            net.set_active(arch)
            teacher.set_active(arch)
            assert torch.equal(net(ids).hidden, teacher(ids).hidden)


def test_distill_a_chosen_student_and_a_teacher_slice_resumably(trained, tmp_path):
    import copy

    from nas.distill import distill
    from nas.run import load_teacher_net
    from supernet.train import step_flops

    tmp, raw = trained
    config = parse_config(raw)
    run = open_run(config, save_config=False)
    arch = run.space["small"].largest
    # From the teacher's first layers: step 0 of the slice is the truncated teacher itself.
    first = distill(config, tmp_path / "first", 2, arch=arch, layers="first")
    teacher = load_teacher_net(run, torch.device("cpu"))
    sliced = copy.deepcopy(teacher)
    sliced.layer_policy = "first"
    sliced.set_active(arch)
    model = AutoModel.from_pretrained(tmp_path / "first").eval()
    assert sum(p.numel() for p in model.parameters()) == params(arch).total
    assert first.steps == 2 and first.source == "teacher-slice:first"
    seq_len = config.data.seq_len
    assert first.train_flops == 2 * step_flops([arch], run.space.teacher, config.train.batch_size, seq_len, 1)
    ids = torch.randint(0, 30522, (2, 9))
    with torch.no_grad():
        moved = (model(input_ids=ids).last_hidden_state - sliced(ids).hidden).abs().max().item()
    assert moved > 0  # two steps of distillation moved the weights away from the slice
    # Resumed: asking for 3 steps continues from step 2 (its FLOPs add up), not from scratch.
    more = distill(config, tmp_path / "first", 3, arch=arch, layers="first")
    assert more.steps == 3 and more.train_flops == pytest.approx(first.train_flops * 3 / 2)
    # From an exported student directory.
    again = distill(config, tmp_path / "again", 1, student=tmp_path / "first")
    assert again.source.startswith("student:") and arch_of(tmp_path / "again") == arch
    # Another architecture into the same directory: refused, or with force started afresh.
    other = run.space["small"].smallest
    with pytest.raises(ValueError, match="holds the distillation of"):
        distill(config, tmp_path / "first", 3, arch=other, layers="first")
    fresh = distill(config, tmp_path / "first", 1, arch=other, layers="first", force=True)
    assert fresh.steps == 1 and arch_of(tmp_path / "first") == other
    with pytest.raises(ValueError, match="give exactly one of --student DIR or --arch JSON"):
        distill(config, tmp_path / "x", 1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty and holds no distillation to resume"):
        distill(config, tmp_path / "full", 1, arch=arch)


def test_distill_slices_the_teacher_in_importance_order_when_asked(trained, tmp_path):
    import copy

    from nas.distill import distill
    from nas.run import reorders_heads, training_setup
    from supernet.importance import reorder_by_importance

    _, raw = trained
    # A learning rate so small that one step leaves the starting weights as they were (to 1e-6).
    config = parse_config({**raw, "train": {**raw["train"], "lr": 1e-12}})
    run = open_run(config, save_config=False)
    arch = run.space["small"].smallest
    result = distill(config, tmp_path / "ordered", 1, arch=arch, layers="first", importance=True)
    assert result.source == "teacher-slice:first+importance"
    setup = training_setup(run, torch.device("cpu"), reorder=True)
    plain = copy.deepcopy(setup.teacher)
    plain.layer_policy = "first"
    ordered = copy.deepcopy(plain)
    reorder_by_importance(ordered, setup.importance, heads=reorders_heads(config))
    model = AutoModel.from_pretrained(tmp_path / "ordered").eval()
    ids = torch.randint(0, 30522, (2, 9))
    with torch.no_grad():
        out = model(input_ids=ids).last_hidden_state
        plain.set_active(arch)
        ordered.set_active(arch)
        assert (out - ordered(ids).hidden).abs().max().item() < 1e-4  # the reordered slice
        assert (out - plain(ids).hidden).abs().max().item() > 1e-2  # not the plain one
    with pytest.raises(ValueError, match="--importance-order: reorders the teacher's slice"):
        distill(config, tmp_path / "x", 1, student=tmp_path / "ordered", importance=True)


def test_importance_order_keeps_the_heads_where_relations_are_compared(trained):
    """A relation-KD run reorders FFN neurons only, so its teacher-size member starts exactly where
    the teacher is; with the heads permuted too it computes the same function, yet its relations
    sit far from the teacher's (the fault this guards against)."""
    from nas.run import fresh_supernet, reorders_heads, training_setup
    from nas.search.evaluate import held_out_targets
    from search_spaces.hull import SupernetShape
    from supernet.distill import evaluate

    _, raw = trained
    config = parse_config(raw)
    assert not reorders_heads(config)  # relation loss in training, relation_kd in the search
    assert reorders_heads(parse_config({**raw, "train": {**raw["train"], "loss": {"relation": {"weight": 0},
                                                                                  "logits": "forward_kl"}},
                                        "search": {**raw["search"], "objectives": ["flops"]}}))
    run = open_run(config, save_config=False)
    setup = training_setup(run, torch.device("cpu"), reorder=True)
    batches = setup.data.held_out_batches(config.train.batch_size, 2)
    targets = held_out_targets(setup.teacher, batches, config.train.loss, run.relation_heads)
    whole = SupernetShape.whole(run.space.teacher)
    kd = {}
    for heads in (False, True):
        net = fresh_supernet(setup.teacher, setup.importance, whole, heads=heads).eval()
        kd[heads] = evaluate(net, run.space.teacher, batches, targets, config.train.loss,
                             run.relation_heads)["relation_kd"]
    assert kd[False] < 1e-7
    assert kd[True] > 1e-4  # a random tiny teacher's attention is nearly uniform: a small gap, but no zero


def test_distill_trains_at_the_students_own_learning_rate(trained, tmp_path):
    from nas.distill import distill
    from nas.export import ExportError
    from nas.run import load_teacher_net

    _, raw = trained
    run = open_run(parse_config(raw), save_config=False)
    arch = run.space["small"].smallest
    teacher = load_teacher_net(run, torch.device("cpu"))
    teacher.layer_policy = "first"
    teacher.set_active(arch)
    ids = torch.randint(0, 30522, (2, 9))
    moved = {}
    # train.lr alone moves the slice; student.lr = 1e-12 overrides it and leaves the slice as it was.
    for name, student in (("train", {}), ("student", {"lr": 1e-12})):
        config = parse_config({**raw, "student": student})
        result = distill(config, tmp_path / name, 1, arch=arch, layers="first")
        assert result.lr == (1e-12 if student else parse_config(raw).train.lr)
        assert json.loads((tmp_path / name / "distilnas.json").read_text())["lr"] == result.lr
        model = AutoModel.from_pretrained(tmp_path / name).eval()
        with torch.no_grad():
            moved[name] = (model(input_ids=ids).last_hidden_state - teacher(ids).hidden).abs().max().item()
    assert moved["student"] < 1e-4 < moved["train"]
    # Checkpoints trained at another rate are not resumed as this rate's: refused, or discarded with --force.
    config = parse_config({**raw, "student": {}})
    with pytest.raises(ExportError, match="holds the distillation of .*'lr': 1e-12"):
        distill(config, tmp_path / "student", 2, arch=arch, layers="first")
    again = distill(config, tmp_path / "student", 1, arch=arch, layers="first", force=True)
    assert again.steps == 1 and again.lr == config.train.lr


def arch_of(directory):
    from search_spaces import arch_from_hf_config

    return arch_from_hf_config(json.loads((directory / "config.json").read_text()))


def test_repeated_proposals_outside_the_band_go_to_the_nearest_untried_member(trained):
    _, raw = trained
    sub = open_run(parse_config(raw), save_config=False).space["small"]
    members = {tuple(sorted(arch_params(a, sub).items())) for a in sub}
    import itertools

    dims = free_dims(sub)
    outside = next(
        dict(zip(dims, combo))
        for combo in itertools.product(*dims.values())
        if tuple(sorted(zip(dims, combo))) not in members
    )
    study = optuna.create_study()
    chosen = []
    for _ in range(3):
        study.enqueue_trial(outside)
        trial = study.ask()
        chosen.append(suggest_arch(trial, sub))
        study.tell(trial, 0.0)
    assert len(set(chosen)) == 3 and all(a in sub for a in chosen)  # three proposals, three members
    assert chosen[0] == nearest_member(outside, sub)  # the first is simply the nearest
    assert all(t.user_attrs["repaired"] and t.user_attrs["arch_id"] == a.id for t, a in zip(study.trials, chosen))



def test_a_member_already_tried_queued_or_running_is_not_proposed_again(trained):
    # Two workers: A has taken the queued warm start (the largest) but not yet suggested it; B
    # proposes the same member meanwhile. B goes to the nearest member not yet tried; A keeps its
    # warm start; a later proposal of either member goes elsewhere too.
    _, raw = trained
    sub = open_run(parse_config(raw), save_config=False).space["small"]
    largest = arch_params(sub.largest, sub)
    study = optuna.create_study()
    study.enqueue_trial(largest)
    a = study.ask()  # RUNNING, its parameters fixed, nothing recorded yet
    study.enqueue_trial(largest)
    b = study.ask()
    moved = suggest_arch(b, sub)
    assert moved != sub.largest and moved in sub and b.user_attrs["repaired"] is True
    assert moved == nearest_member(largest, sub, frozenset({sub.largest.id}))
    assert suggest_arch(a, sub) == sub.largest and "repaired" not in a.user_attrs
    study.tell(a, 0.0)
    study.tell(b, 0.0)
    study.enqueue_trial(largest)
    assert suggest_arch(study.ask(), sub) not in (sub.largest, moved)


def test_a_short_training_proxy_scores_each_candidate_after_its_own_steps_and_leaves_the_supernet(trained):
    from supernet.checkpoint import latest_state

    tmp, raw = trained
    before = latest_state(Path(raw["run_dir"]) / "supernets" / "small")["weights_sha256"]
    values = {}
    for steps in (0, 2):
        config = parse_config({**raw, "storage": f"sqlite:///{tmp / f'proxy-{steps}.db'}",
                               "search": {**raw["search"], "trials": 1, "proxy_steps": steps}})
        (result,) = run_search(config, subspaces=["small"])
        study = optuna.load_study(study_name=result.study_name, storage=config.storage_url)
        (trial,) = study.get_trials()
        assert trial.state == TrialState.COMPLETE and study.user_attrs["proxy_steps"] == steps
        values[steps] = trial.user_attrs["objectives"]
    # The same warm-start member, scored after 2 steps of its own distillation: a lower relation KD
    # than its inherited weights (2 steps at the run's rate move a tiny network this much).
    assert values[2]["relation_kd"] < values[0]["relation_kd"]
    assert values[2]["flops"] == values[0]["flops"]
    assert latest_state(Path(raw["run_dir"]) / "supernets" / "small")["weights_sha256"] == before  # thrown away


def test_once_every_member_is_tried_a_repeat_reuses_its_measurement_without_evaluating(trained):
    from nas.search.evaluate import SupernetEvaluator
    from nas.search.space import TrialSpace
    from nas.search.study import prepare_search
    from nas.search.trials import objective_fn

    _, raw = trained
    config = parse_config(raw)
    run = open_run(config, save_config=False)
    sub, search, cpu = run.space["small"], config.search, torch.device("cpu")
    setup = prepare_search(config, search, [sub], run, cpu, joint_assistant=False)
    supernet, _ = load_trained_supernet(run, "small", cpu)
    real = SupernetEvaluator(supernet, setup.batches, setup.targets, config.train.loss, run.relation_heads,
                             search.batch_size, search.seq_len, search.budgets, cpu)

    class Counted:  # the real evaluator, with each call it receives written down
        def __init__(self):
            self.calls: list[str] = []

        def measure(self, arch, **kwargs):
            self.calls.append(arch.id)
            return real.measure(arch, **kwargs)

    counted = Counted()
    study = optuna.create_study(directions=[o.direction for o in search.objectives],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective_fn(study, TrialSpace(sub), counted, search, {}), n_trials=sub.size + 2)
    # Every member measured exactly once: no repeat while an untried member was left ...
    assert sorted(counted.calls) == sorted(a.id for a in sub.archs())
    # ... and the two trials beyond the space's size reuse an earlier trial's measurement.
    repeats = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert len(repeats) == 2
    for t in repeats:
        original = study.trials[t.user_attrs["duplicate_of"]]
        assert original.user_attrs["arch_id"] == t.user_attrs["arch_id"] and original.values == t.values
