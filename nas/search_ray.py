"""Search trials as Ray Tune trials, on a Ray cluster or a local Ray.

The same Optuna study (same storage, same sampler, same `suggest_arch`) drives Ray Tune through
`OptunaSearch`; the evaluator (supernet weights and the teacher's held-out targets) is put in the
object store once with `tune.with_parameters`, so each node fetches it once, never re-reading a
checkpoint per trial. Workers report every objective; the driver writes them onto the Optuna
trial (`RecordingOptunaSearch`) before telling it, so the storage looks the same as a local run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Callable

import optuna
from ray.tune.search.optuna import OptunaSearch

from nas.config import RayConfig, SearchConfig

log = logging.getLogger(__name__)

# Attributes a worker reports as JSON strings and the driver stores on the Optuna trial.
_RECORDED = ("arch", "arch_id", "eval_key", "subspace", "objectives", "constraints", "feasible", "duplicate_of",
             "fail_reason", "provenance", "node")


def init_ray(address: str) -> dict[str, Any]:
    """Connect to `address`, or start a local Ray bound to loopback for `local`."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    # The engine's own settings (teacher cache, fault injection) reach every worker process.
    runtime_env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("DISTILNAS_")}}
    if address == "local":
        # Loopback only (docs/ARCHITECTURE.md, "Ray"): these must be in the environment of the node.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, runtime_env=runtime_env)
    else:
        ray.init(address=address, runtime_env=runtime_env)  # workers' logs stream back to this driver
    nodes = [n for n in ray.nodes() if n["Alive"]]
    log.info("Ray at %s: %d node(s) %s, resources %s", address, len(nodes),
             [n["NodeManagerAddress"] for n in nodes], ray.cluster_resources())
    return ray.cluster_resources()


def _node_id() -> str:
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def _evaluate_on_worker(config: dict[str, Any], evaluator: Any, storage_url: str | None, study_name: str,
                        objective_names: list[str], provenance: dict[str, Any]) -> None:
    from ray import tune

    from nas.search import candidate_of, evaluate_candidate

    arch, _, key = candidate_of(config)
    report: dict[str, Any] = {"arch": arch.to_dict(), "arch_id": arch.id, "eval_key": key,
                              "subspace": config["subspace"], "provenance": provenance, "node": _node_id()}
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url) if storage_url else None
        attrs, m = evaluate_candidate(config, evaluator, study, study_name)
        report.update(attrs, objectives=m.objectives, constraints=m.constraints, feasible=m.feasible)
        values = {n: m.objectives[n] for n in objective_names}
    except Exception as err:  # recorded on the trial as its reason; NaN makes Optuna fail it
        report["fail_reason"] = f"{type(err).__name__}: {err}"[:500]
        values = {n: math.nan for n in objective_names}
    tune.report({**values, **{f"attr_{k}": json.dumps(v) for k, v in report.items()}})


class RecordingOptunaSearch(OptunaSearch):
    """OptunaSearch that stores the worker's report as Optuna trial attributes and constraints.

    Tune checkpoints searchers by pickling them; here the Optuna storage already holds every
    trial, so the checkpoint only says so and a resumed search reloads the study instead.
    """

    budgets: dict[str, float] = {}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and result:
            attrs = {k: json.loads(result[f"attr_{k}"]) for k in _RECORDED if f"attr_{k}" in result}
            for key, value in zip(sorted(self.budgets), attrs.get("constraints", [])):
                ot_trial.set_constraint(key, value)
            for key, value in attrs.items():
                ot_trial.set_user_attr(key, value)
            if "fail_reason" in attrs and trial_id not in self._completed_trials:
                # OptunaSearch would `tell` COMPLETE with NaN values, which Optuna refuses, leaving
                # the trial RUNNING; a failed evaluation is told as FAIL here instead.
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
                self._completed_trials.add(trial_id)
                return
        elif ot_trial is not None and error:
            ot_trial.set_user_attr("fail_reason", "the Ray trial raised; see the Ray logs of its node")
        super().on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"state": "in the Optuna storage", "study": self._study_name}))

    def restore(self, checkpoint_path: str) -> None:
        pass


def run_trials_on_ray(study: optuna.Study, storage: optuna.storages.BaseStorage, space: Callable[[optuna.Trial], dict[str, Any]],
                      evaluator: Any, search: SearchConfig, provenance: dict[str, Any], n_trials: int,
                      timeout: float | None, address: str, ray_cfg: RayConfig, storage_url: str | None = None,
                      results_dir: Path | None = None) -> None:
    from ray import tune

    init_ray(address)
    names = [o.name for o in search.objectives]
    searcher = RecordingOptunaSearch(
        space=space,
        metric=names, mode=["min" if o.direction == "minimize" else "max" for o in search.objectives],
        sampler=study.sampler, study_name=study.study_name, storage=storage)
    searcher.budgets = search.budgets
    trainable = tune.with_resources(
        tune.with_parameters(_evaluate_on_worker, evaluator=evaluator, storage_url=storage_url,
                             study_name=study.study_name, objective_names=names, provenance=provenance),
        {"cpu": ray_cfg.cpus_per_trial, "gpu": ray_cfg.gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n_trials, time_budget_s=timeout),
        run_config=tune.RunConfig(name=study.study_name.replace(":", "-"), verbose=1,
                                  storage_path=str((results_dir or Path.cwd() / "ray_results").resolve())),
    )
    with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for Study.optimize
        warnings.simplefilter("ignore", UserWarning)
        tuner.fit()
