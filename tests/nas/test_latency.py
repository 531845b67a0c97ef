"""Latency tables, the predictor, and latency budgets in the search."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from conftest import TINY_ENCODER, tiny_run_config
from optuna.trial import TrialState

from nas.config import parse_config
from nas.latency import (
    FEATURES,
    LatencyPredictor,
    LatencyTable,
    NoPredictorError,
    device_description,
    features,
    measure_arch,
    predictor_path,
    table_path,
)
from nas.run import open_run
from nas.search.study import run_search
from nas.train import run_train
from search_spaces import SearchSpace, hf_config_overrides

CPU = torch.device("cpu")


def tiny_space():
    return SearchSpace.from_teacher({"model_type": "bert", **hf_config_overrides(TINY_ENCODER)}, partitions=1)


def test_table_round_trips_real_measurements(tmp_path):
    archs = tiny_space().sample(0, 3)
    table = LatencyTable(device_description(CPU))
    for arch in archs:
        latency = measure_arch(arch, None, 1, 8, CPU, repeats=3)
        assert latency.median_ms > 0 and latency.spread_ms >= 0 and latency.runs == 3
        table.add(arch, latency)
    path = table_path(tmp_path, CPU)
    table.save(path)
    again = LatencyTable.load(path)
    assert again == table
    got, ms = again.samples(1, 8, "fp32")
    assert got == archs and ms.tolist() == [p["median_ms"] for p in table.points]
    assert again.samples(2, 8, "fp32")[0] == []  # other settings are other points


def test_predictor_recovers_an_exact_linear_latency_and_round_trips(tmp_path):
    archs = list(tiny_space().archs())
    truth = np.array([0.5, 0.1, 2.0, 1.5, 0.0, 0.0, 0.3])  # non-negative, as the fit assumes
    ms = np.array([features(a, 1, 16) @ truth for a in archs])
    predictor = LatencyPredictor.fit(archs, ms, 1, 16, "fp32", device_description(CPU))
    assert predictor.train_mape < 1e-6
    predictor.save(tmp_path / "p.json")
    loaded = LatencyPredictor.load(tmp_path / "p.json")
    for a, y in zip(archs, ms):
        assert abs(loaded.predict_ms(a) - y) / y <= loaded.train_max_ape + 1e-9


def test_predictor_generalises_to_held_out_architectures():
    """Fitted on half the space, judged on the other half: a predictor that memorised its
    training points (or fitted noise) would fail here."""
    archs = list(tiny_space().archs())
    rng = np.random.default_rng(0)
    order = rng.permutation(len(archs))
    train, held = [archs[i] for i in order[: len(archs) // 2]], [archs[i] for i in order[len(archs) // 2:]]
    truth = np.array([0.5, 0.1, 2.0, 1.5, 0.0, 0.0, 0.3])
    noisy = lambda a: float(features(a, 1, 16) @ truth) * (1 + 0.05 * rng.standard_normal())  # noqa: E731
    predictor = LatencyPredictor.fit(train, np.array([noisy(a) for a in train]), 1, 16, "fp32", {})
    truth_ms = np.array([features(a, 1, 16) @ truth for a in held])
    errors = np.abs(np.array([predictor.predict_ms(a) for a in held]) - truth_ms) / truth_ms
    assert errors.mean() < 0.05 and errors.max() < 0.15  # 5% noise in, the linear truth recovered


def test_predictor_reproduces_measured_training_points_within_its_stated_error():
    archs = tiny_space().sample(1, len(FEATURES) + 3)
    ms = np.array([measure_arch(a, None, 1, 16, CPU, repeats=3).median_ms for a in archs])
    predictor = LatencyPredictor.fit(archs, ms, 1, 16, "fp32", device_description(CPU))
    errors = [abs(predictor.predict_ms(a) - y) / y for a, y in zip(archs, ms)]
    assert max(errors) <= predictor.train_max_ape + 1e-9
    assert np.mean(errors) == pytest.approx(predictor.train_mape)
    with pytest.raises(ValueError, match="need at least 7"):
        LatencyPredictor.fit(archs[:3], ms[:3], 1, 16, "fp32", {})


def test_latency_budget_excludes_candidates_predicted_over_it(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["search"].update(objectives=["relation_kd", "latency_ms"], trials=6, latency_device="cpu", seq_len=16)
    config = parse_config(raw)
    with pytest.raises(NoPredictorError, match="no latency predictor for device 'cpu'.*nas latency measure"):
        run_search(config)
    run_train(config, progress=False)
    run = open_run(config, save_config=False)
    # A predictor whose latency is exactly the number of layers (ms): budget 2.5 ms keeps L <= 2.
    coef = [0.0] * len(FEATURES)
    coef[FEATURES.index("layers")] = 1.0
    LatencyPredictor(coef, 1, 16, "fp32", device_description(CPU), 0.0, 0.0, 10).save(predictor_path(run.run_dir, CPU))
    raw["search"]["budgets"] = {"latency_ms": 2.5}
    results = run_search(parse_config(raw))
    assert all(r.complete == 6 for r in results)
    seen_over = False
    for r in results:
        study = optuna.load_study(study_name=r.study_name, storage=config.storage_url)
        for t in study.get_trials(states=(TrialState.COMPLETE,)):
            predicted = t.user_attrs["objectives"]["latency_ms"]
            assert predicted == t.user_attrs["arch"]["num_layers"]
            assert t.user_attrs["feasible"] == (predicted <= 2.5)
            seen_over |= predicted > 2.5
        assert study.user_attrs["provenance"]["latency"]["source"] == "predicted"
    assert seen_over
    from nas.search.pareto import load_points, pareto_front

    points, directions = load_points(config.storage_url)
    assert all(
        p.objectives["latency_ms"] <= 2.5 for p in pareto_front(points, ["relation_kd", "latency_ms"], directions)
    )

    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas.cli",
            "pareto",
            "--storage",
            config.storage_url,
            "--objectives",
            "relation_kd",
            "latency_ms",
            "--verify-latency",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "predicted ms" in out.stdout and "measured ms" in out.stdout
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "predicted ms" in line)
    rows = lines[start + 1 : -1]
    front = pareto_front(points, ["relation_kd", "latency_ms"], directions)
    assert [int(r.split()[0]) for r in rows] == [p.trial_id for p in front]  # every front point re-measured
    assert lines[-1].startswith("mean absolute error")
