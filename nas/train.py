"""`nas train CONFIG`: train the supernet of every sub-space of a run (resumable)."""

from __future__ import annotations

import copy
import logging

from nas.config import RunConfig
from nas.run import load_data, load_teacher_net, open_run
from supernet.importance import measure_importance, reorder_by_importance
from supernet.train import TrainResult, train_supernet

log = logging.getLogger(__name__)


def run_train(config: RunConfig, device: str | None = None, subspaces: list[str] | None = None,
              progress: bool = True) -> list[TrainResult]:
    run = open_run(config)  # config, space and relation heads checked before any weights load
    chosen = [run.space[name] for name in subspaces] if subspaces else list(run.space.subspaces)
    dev = run.device(device)
    data = load_data(run)
    teacher = load_teacher_net(run, dev)
    importance = None
    if config.train.reorder_importance:
        batches = [{k: v.to(dev) for k, v in data.train_batch(0, m, 1, config.train.batch_size, config.train.seed).items()}
                   for m in range(config.train.eval_batches)]
        importance = measure_importance(teacher, batches)
    results = []
    for sub in chosen:
        # Each sub-space's supernet starts from the teacher's weights (deepcopy keeps the
        # weight map pointing at the copy's own parameters).
        supernet = copy.deepcopy(teacher).requires_grad_(True).train()
        if importance is not None:
            reorder_by_importance(supernet, importance)
        result = train_supernet(supernet, teacher, sub, data, config.train, run.relation_heads,
                                run.supernet_dir(sub.name), dev, progress)
        log.info("[%s] trained to step %d; checkpoint %s", sub.name, result.step, result.checkpoint)
        results.append(result)
    return results
