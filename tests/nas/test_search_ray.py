"""`nas search` and `nas train` on a real multi-node Ray cluster on loopback: a head node and a
worker node (each its own raylet and worker processes, 127.0.0.1 only), stopped by PID."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_ENCODER, tiny_run_config
from optuna.trial import TrialState

from nas.assistants.schedule import run_schedule
from nas.config import parse_config
from nas.ray.cluster import LoopbackRayCluster
from nas.run import open_run
from nas.train import run_train
from supernet.checkpoint import load_latest

DDP_TOLERANCE = 1e-5  # max |w| difference, 2 workers vs 1 worker with the doubled batch (fp32, gloo)


def nas(args: list[str], env: dict) -> None:
    out = subprocess.run([sys.executable, "-m", "nas.cli", *args], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.integration
def test_search_and_training_on_a_two_node_loopback_cluster(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=4, batch_size=2, checkpoint_every=2)
    raw["data"]["packing"] = True  # full rows: shard means equal the doubled batch's mean
    # AutoDistil's boxes: the 1e-5 DDP tolerance below was set on the "small" box's sandwich sets
    # (AdamW's normalised updates amplify float-order noise in near-zero gradients; the cost band's
    # sets show 2.5e-5). That the all-reduce averages is tested exactly in test_average_gradients.
    raw["space"]["partition_by"] = "box"
    raw["search"].update(trials=4, budgets={"flops": 2.0e6})
    raw["assistants"] = {"supernet_steps": 2, "distill_steps": 2, "grid": [0.3, 0.6]}
    single = {**raw, "run_dir": str(tmp_path / "single"), "train": {**raw["train"], "batch_size": 4}}
    run_train(parse_config(single), subspaces=["small"], progress=False)  # the 1-worker reference
    searched = {**raw, "run_dir": str(tmp_path / "searched")}
    run_train(parse_config(searched), subspaces=["small"], progress=False)
    run_schedule(parse_config(searched), subspaces=["small"], progress=False)
    (tmp_path / "searched.yaml").write_text(yaml.safe_dump(searched))
    # A second storage whose warm-start trial raises on the worker (an injected fault); four
    # trials on two resident workers, two each: the worker whose trial failed must go on.
    faulty = {**searched, "storage": f"sqlite:///{tmp_path / 'faulty.db'}", "search": {**raw["search"], "trials": 4}}
    (tmp_path / "faulty.yaml").write_text(yaml.safe_dump(faulty))
    largest = open_run(parse_config(searched), save_config=False).space["small"].largest

    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(raw))
    killed = tmp_path / "killed-once"
    ray_default_tmp = Path("/tmp/ray")  # where Ray writes unless told otherwise: the cluster must not
    before = sorted(p.name for p in ray_default_tmp.iterdir()) if ray_default_tmp.is_dir() else None
    with LoopbackRayCluster(workers=1, cpus_per_node=1) as cluster:
        assert cluster.listening_addresses() <= {"127.0.0.1", "::ffff:127.0.0.1"}
        env = cluster.env
        nas(["search", str(tmp_path / "faulty.yaml"), "--subspace", "small", "--ray-address", cluster.address],
            {**env, "DISTILNAS_RAISE_AT": f"evaluate:searched:small:{largest.id}"})
        nas(["search", str(tmp_path / "searched.yaml"), "--subspace", "small", "--ray-address", cluster.address], env)
        nas(["search", str(tmp_path / "searched.yaml"), "--subspace", "small", "--ray-address", cluster.address,
             "--joint-assistant", "--trials", "3"], env)
        # One Ray Train worker is SIGKILLed after its 3rd step, once: the group restarts and resumes.
        nas(["train", str(tmp_path / "ddp.yaml"), "--subspace", "small", "--workers", "2",
             "--ray-address", cluster.address],
            {**env, "DISTILNAS_KILL_AT": "train-step:3", "DISTILNAS_KILL_ONCE": str(killed)})
    assert not cluster.processes()  # every process of the cluster was stopped
    after = sorted(p.name for p in ray_default_tmp.iterdir()) if ray_default_tmp.is_dir() else None
    assert after == before  # nothing created (or added) under Ray's default temp dir

    storage = parse_config(searched).storage_url
    trials = optuna.load_study(study_name="searched:small", storage=storage).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]  # every trial once
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["node"] for t in trials}) == 2  # trials ran on both nodes
    for t in trials:
        assert t.user_attrs["objectives"]["flops"] == t.values[1]
        assert t.user_attrs["feasible"] == (t.values[1] <= 2.0e6)
    assert trials[0].user_attrs.get("warm_start")  # the truncated teacher went first
    # Two workers with trials in flight at once still measured four different members.
    assert len({t.user_attrs["arch_id"] for t in trials}) == 4
    faulty_trials = optuna.load_study(study_name="searched:small", storage=faulty["storage"]).get_trials()
    [failed] = [t for t in faulty_trials if t.state == TrialState.FAIL]
    assert sum(t.state == TrialState.COMPLETE for t in faulty_trials) == 3  # the search went on ...
    # ... and so did the worker whose trial failed: it completed its next trial.
    assert any(t.state == TrialState.COMPLETE and t.user_attrs["node"] == failed.user_attrs["node"]
               for t in faulty_trials)
    assert (
        failed.user_attrs["fail_reason"] == f"InjectedFault: injected failure at evaluate:searched:small:{largest.id}"
    )
    joint = optuna.load_study(study_name="searched:small:joint-ta", storage=storage).get_trials()
    assert [t.state for t in joint] == [TrialState.COMPLETE] * 3
    assert all("ta_sparsity" in t.params for t in joint)

    assert killed.exists()  # a worker was killed mid-training ...
    ddp = load_latest(Path(raw["run_dir"]) / "supernets" / "small")
    ref = load_latest(Path(single["run_dir"]) / "supernets" / "small")
    assert ddp.step == ref.step == 4 and ddp.state["workers"] == 2  # ... and the group resumed to the end
    worst = max((ddp.weights[k] - ref.weights[k]).abs().max().item() for k in ref.weights)
    assert worst <= DDP_TOLERANCE
    assert list((Path(raw["run_dir"]) / "ray_train").rglob("checkpoint_*"))  # Ray's storage has copies
