"""Search trials on a Ray cluster, evaluated by resident workers.

A Ray search starts one long-lived worker (a Ray actor) per free trial slot of the cluster
(`ray.cpus_per_trial`, `ray.gpus_per_trial` each). The evaluator (supernet weights and the
teacher's held-out targets) goes into Ray's object store once and each worker loads it once;
then every worker runs the study's ordinary trial loop (`nas.search.trials.run_trials`) on the
shared Optuna storage, its share of the trials one after the other. This is Optuna's own
distributed pattern: the storage hands out trials, the sampler sees the trials still running
(TPE as a constant liar; a repaired proposal avoids every architecture already tried), and a
duplicate is reused, not evaluated again.

Why not a Ray Tune trial per candidate: a Tune trial costs seconds of actor start-up, imports
and evaluator transfer (measured about 10 s against 0.3 s of evaluation, `benchmarks/ray_scaling.py`);
a resident worker pays that once per search.

A failing candidate is a FAIL trial with its reason and the worker goes on (the loop catches it,
as in-process). A worker that dies leaves its trial RUNNING; the storage's heartbeat fails it
and queues a retry, and a rerun of the search continues up to the trial count. Workers need the
storage by URL: SQLite on one machine, PostgreSQL (or a journal file on a shared disk) across
machines.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import optuna

from nas.config import RayConfig, SearchConfig
from nas.ray.cluster import init_ray
from nas.search.evaluate import Evaluator
from nas.search.space import TrialSpace
from nas.search.trials import make_sampler, run_trials
from nas.storage import open_storage

log = logging.getLogger(__name__)


class StudyWorker:
    """One resident evaluator: loads the evaluator once, then runs trials of any study handed to it."""

    def __init__(self, evaluator: Evaluator, threads: int) -> None:
        import ray
        import torch

        torch.set_num_threads(threads)  # the slot's CPUs, not every core of the node
        self.evaluator = evaluator
        self.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"

    def run(self, storage_url: str, study_name: str, space: TrialSpace, search: SearchConfig, seed: int,
            prov: dict[str, Any], n_trials: int, timeout: float | None) -> str:
        sampler_cfg = search.model_copy(update={"seed": seed})  # each worker its own stream of proposals
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url),
                                  sampler=make_sampler(search.sampler, space.sub, sampler_cfg, space.extra_dims()))
        run_trials(study, space, self.evaluator, search, prov, n_trials, timeout, attrs={"node": self.node})
        return self.node


def worker_slots(resources: dict[str, float], ray_cfg: RayConfig) -> int:
    """How many trials the cluster can run at once with `ray_cfg`'s resources per trial."""
    slots = int(resources.get("CPU", 0) // ray_cfg.cpus_per_trial)
    if ray_cfg.gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) // ray_cfg.gpus_per_trial))
    return slots


def shares(n_trials: int, workers: int) -> list[int]:
    """`n_trials` split as evenly as possible over `workers` (each share >= 1)."""
    workers = max(1, min(workers, n_trials))
    return [n_trials // workers + (i < n_trials % workers) for i in range(workers)]


def run_trials_on_ray(study: optuna.Study, space: TrialSpace, evaluator: Evaluator, *, search: SearchConfig,
                      provenance: dict[str, Any], n_trials: int, timeout: float | None, address: str,
                      ray_cfg: RayConfig, storage_url: str) -> list[str]:
    """Run `n_trials` trials of `study` on resident Ray workers; returns the node of each worker."""
    import ray

    resources = init_ray(address)
    slots = worker_slots(resources, ray_cfg)
    if slots < 1:
        raise ValueError(f"ray.cpus_per_trial: {ray_cfg.cpus_per_trial} CPU(s) and gpus_per_trial "
                         f"{ray_cfg.gpus_per_trial} per trial, but the cluster has {resources}: no trial fits")
    plan = shares(n_trials, slots)
    evaluator_ref = ray.put(evaluator)  # once into the object store; each worker loads it once
    worker_class = ray.remote(num_cpus=ray_cfg.cpus_per_trial, num_gpus=ray_cfg.gpus_per_trial)(StudyWorker)
    threads = max(1, int(ray_cfg.cpus_per_trial))
    workers = [worker_class.remote(evaluator_ref, threads) for _ in plan]
    log.info("study %s: %d trial(s) on %d resident Ray worker(s)", study.study_name, n_trials, len(workers))
    try:
        return ray.get([w.run.remote(storage_url, study.study_name, space, search, search.seed + i, provenance,
                                     share, timeout) for i, (w, share) in enumerate(zip(workers, plan))])
    finally:
        for w in workers:
            ray.kill(w)
