"""`nas search` as Ray Tune trials against a real Ray cluster (a head node in its own processes) on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import TINY_ENCODER, tiny_run_config
from nas.config import parse_config
from nas.schedule import run_schedule
from nas.train import run_train
from ray_cluster import LoopbackRayCluster


@pytest.mark.slow
@pytest.mark.integration
def test_search_on_a_loopback_ray_cluster(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=2)
    raw["search"].update(trials=4, budgets={"flops": 2.0e6})
    raw["assistants"] = {"supernet_steps": 2, "distill_steps": 2, "grid": [0.3, 0.6]}
    run_train(parse_config(raw), subspaces=["small"], progress=False)
    run_schedule(parse_config(raw), subspaces=["small"], progress=False)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    with LoopbackRayCluster() as cluster:
        assert len(cluster.processes()) >= 2
        for joint in ([], ["--joint-assistant", "--trials", "3"]):
            out = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(tmp_path / "run.yaml"),
                                  "--subspace", "small", "--ray-address", cluster.address, *joint],
                                 env=cluster.env, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, out.stderr[-3000:]
    assert not cluster.processes()  # every process of the cluster was stopped
    joint = optuna.load_study(study_name=f"{Path(raw['run_dir']).name}:small:joint-ta",
                              storage=parse_config(raw).storage_url).get_trials()
    assert [t.state for t in joint] == [TrialState.COMPLETE] * 3, [(t.state, t.user_attrs) for t in joint]
    assert all(t.user_attrs["node"] and "ta_sparsity" in t.params for t in joint)
    study = optuna.load_study(study_name=f"{Path(raw['run_dir']).name}:small", storage=parse_config(raw).storage_url)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.user_attrs["node"] and t.user_attrs["objectives"]["flops"] == t.values[1]
        assert t.user_attrs["feasible"] == (t.values[1] <= 2.0e6)
    assert trials[0].user_attrs.get("warm_start")  # the truncated teacher went first
    assert len({t.user_attrs["arch_id"] for t in trials if "duplicate_of" not in t.user_attrs}) == \
        sum("duplicate_of" not in t.user_attrs for t in trials)
