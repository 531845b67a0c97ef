"""`nas train --workers N` / `ray.address`: supernet training as Ray Train data-parallel jobs.

Each sub-space's supernet is one `TorchTrainer` (gloo on CPU, NCCL on GPU) with N workers; the K
trainers are started together, so they run in parallel when the cluster has room for K x N
workers and queue otherwise. Every worker runs the ordinary training loop
(`supernet.train.train_supernet`) with a `Shard`: it draws the same sandwich set per step (same
seed), takes its rows of the step's global batch, and averages gradients with the others (see
`_average_gradients`). Rank 0 writes the run's checkpoints and reports each to Ray Train, which
copies it to its storage path (`<run_dir>/ray_train/` unless the cluster's storage is given).
After a worker dies, Ray Train restarts the group (`ray.max_failures`) and every worker resumes
from the newest intact checkpoint: the run directory's, or else the one in Ray's storage.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nas.config import RunConfig, parse_config
from nas.ray.cluster import init_ray
from nas.run import load_data, open_run, training_setup
from supernet.checkpoint import load_latest
from supernet.train import Shard, TrainResult, train_supernet

log = logging.getLogger(__name__)


def restore_from_ray(checkpoint: Any, out_dir: Path) -> None:
    """Copy Ray Train's checkpoint into the run directory when the run directory has none newer
    (a node that lost its disk, or a fresh node of the cluster)."""
    if checkpoint is None:
        return
    with checkpoint.as_directory() as src:
        step = int(json.loads((Path(src) / "state.json").read_text())["step"])
        local = load_latest(out_dir, with_optimizer=False)
        if local is not None and local.step >= step:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".tmp-ray-{step:08d}-{os.getpid()}"
        shutil.copytree(src, tmp)
        os.replace(tmp, out_dir / f"step-{step:08d}")


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the ordinary training loop on its shard of every batch."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    config = parse_config(loop_config["config"])
    run = open_run(config, save_config=False)
    sub = run.space[loop_config["subspace"]]
    out_dir = run.supernet_dir(sub.name)
    restore_from_ray(ray.train.get_checkpoint(), out_dir)
    device = ray.train.torch.get_device()
    setup = training_setup(run, device)
    supernet = setup.supernet(sub)

    def report(step: int, path: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(str(path)) if path is not None else None
        ray.train.report({"step": step, "node": ray.get_runtime_context().get_node_id()}, checkpoint=checkpoint)

    train_supernet(supernet, setup.source(), sub, setup.data, config.train, run.relation_heads, out_dir, device,
                   progress=False, shard=Shard(ctx.get_world_rank(), ctx.get_world_size()), on_checkpoint=report)


def run_train_on_ray(config: RunConfig, workers: int, address: str, subspaces: list[str] | None = None,
                     storage_path: str | None = None) -> list[TrainResult]:
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    run = open_run(config)  # every check before the cluster is touched
    chosen = run.subspaces(subspaces)
    load_data(run)  # tokenised once here; the workers read the cache
    init_ray(address)
    use_gpu = config.ray.gpus_per_trial > 0
    trainers = [
        TorchTrainer(
            _worker_loop,
            train_loop_config={"config": config.model_dump(mode="json", by_alias=True), "subspace": sub.name},
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ray.train.ScalingConfig(
                num_workers=workers,
                use_gpu=use_gpu,
                resources_per_worker={
                    "CPU": config.ray.cpus_per_trial,
                    **({"GPU": config.ray.gpus_per_trial} if use_gpu else {}),
                },
            ),
            run_config=ray.train.RunConfig(
                name=f"{run.run_dir.name}-{sub.name}",
                storage_path=storage_path or str((run.run_dir / "ray_train").resolve()),
                failure_config=ray.train.FailureConfig(max_failures=config.ray.max_failures),
            ),
        )
        for sub in chosen
    ]
    log.info("training %d supernet(s) with %d Ray Train worker(s) each", len(trainers), workers)
    try:
        with ThreadPoolExecutor(max_workers=len(trainers)) as pool:
            list(pool.map(lambda t: t.fit(), trainers))
    finally:
        ray.shutdown()  # the connection (or the local Ray) this command opened, as `nas search` does
    results = []
    for sub in chosen:
        ckpt = load_latest(run.supernet_dir(sub.name), with_optimizer=False)
        if ckpt is None:
            raise RuntimeError(f"Ray Train finished sub-space {sub.name!r} without a checkpoint in {run.run_dir}")
        results.append(
            TrainResult(
                sub.name,
                ckpt.step,
                ckpt.path,
                list(ckpt.state.get("skipped_steps", [])),
                ckpt.state.get("last_eval", {}),
                float(ckpt.state.get("train_flops", 0.0)),
            )
        )
    return results
