"""`nas train CONFIG`: train the supernet of every sub-space of a run (resumable).

Three teachers are possible: the teacher (default); the teacher-assistant chain `nas schedule`
recorded for the sub-space (`--via-assistant`: teacher -> TA -> student); none
(`--teacher-free` or `train.loss.kind: lm`: the truncated teacher trained on next-token loss).
"""

from __future__ import annotations

import copy
import logging

import torch

from nas.config import RunConfig
from nas.run import load_data, load_teacher_net, open_run, supernet_shape, training_teacher
from nas.storage import open_storage
from search_spaces import SupernetShape
from supernet.config import TrainConfig
from supernet.data import TokenizedData
from supernet.importance import LayerImportance, measure_importance, reorder_by_importance
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher
from supernet.train import TrainResult, train_supernet

log = logging.getLogger(__name__)


def teacher_importance(teacher: SuperLM, data: TokenizedData, cfg: TrainConfig, device: torch.device) -> list[LayerImportance]:
    """Head and neuron importance of the teacher on the first training batches."""
    batches = [{k: v.to(device) for k, v in data.train_batch(0, m, 1, cfg.batch_size, cfg.seed).items()}
               for m in range(cfg.eval_batches)]
    return measure_importance(teacher, batches)


def fresh_supernet(teacher: SuperLM, importance: list[LayerImportance] | None, shape: SupernetShape) -> SuperLM:
    """A trainable supernet holding `shape` (a sub-space's hull), initialised from the teacher's
    weights, reordered by importance first when asked (so the hull keeps the most important heads
    and neurons)."""
    supernet = teacher
    if importance is not None:
        supernet = copy.deepcopy(teacher)  # deepcopy keeps the weight map on the copy's own tensors
        reorder_by_importance(supernet, importance)
    return supernet.hull(shape).requires_grad_(True).train()


def run_train(config: RunConfig, device: str | None = None, subspaces: list[str] | None = None,
              progress: bool = True, teacher_free: bool = False, via_assistant: bool = False,
              workers: int | None = None, ray_address: str | None = None) -> list[TrainResult]:
    """Train locally, or with Ray Train when `workers` > 1 or a Ray address (argument or
    `ray.address`) is given (`nas.train_ray`)."""
    from nas import assistants as ta

    if teacher_free:
        config = config.model_copy(update={"train": config.train.model_copy(
            update={"loss": config.train.loss.model_copy(update={"kind": "lm"})})})
    teacher_free = config.train.loss.kind == "lm"
    if teacher_free and via_assistant:
        raise ValueError("--via-assistant: a teacher-free run (train.loss.kind: lm) has no teacher to assist")
    workers = workers or config.ray.workers
    address = ray_address or config.ray.address
    if workers > 1 or address:
        if via_assistant:
            raise ValueError("--via-assistant: runs in one process; drop --workers / ray.address")
        from nas.train_ray import run_train_on_ray

        return run_train_on_ray(config, workers, address or "local", subspaces)
    run = open_run(config)  # config, space and relation heads checked before any weights load
    if teacher_free and run.space.teacher.family != "decoder":
        raise ValueError("train.loss.kind: 'lm' (teacher-free) is for decoders; this teacher is an encoder")
    chosen = [run.space[name] for name in subspaces] if subspaces else list(run.space.subspaces)
    chains = {}
    if via_assistant:  # every chain read before any weights load
        storage = open_storage(config.storage_url)
        chains = {sub.name: ta.recorded_chain(storage, config, sub.name) for sub in chosen}
    dev = run.device(device)
    data = load_data(run)
    teacher = load_teacher_net(run, dev)
    importance = teacher_importance(teacher, data, config.train, dev) if config.train.reorder_importance else None
    assistants = ta.load_assistant_supernet(run, dev) if any(chains.values()) else None
    results = []
    for sub in chosen:
        supernet = fresh_supernet(teacher, importance, supernet_shape(run, sub))
        # The truncated teacher is the initialisation in every case; what teaches it differs.
        source: SuperLM | CachedTeacher | None = training_teacher(run, teacher, data)
        if teacher_free:
            source = None
        elif chains.get(sub.name):
            source = ta.assistant_chain_net(run, chains[sub.name], assistants, data, dev)
            log.info("[%s] distilling through %s", sub.name, " -> ".join(a.id for a in chains[sub.name]))
        result = train_supernet(supernet, source, sub, data, config.train, run.relation_heads,
                                run.supernet_dir(sub.name), dev, progress)
        log.info("[%s] trained to step %d; checkpoint %s", sub.name, result.step, result.checkpoint)
        results.append(result)
    return results
