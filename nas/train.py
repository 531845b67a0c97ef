"""`nas train CONFIG`: train the supernet of every sub-space of a run (resumable).

Three teachers are possible: the teacher (default); the teacher-assistant chain `nas schedule`
recorded for the sub-space (`--via-assistant`: teacher -> TA -> student); none
(`--teacher-free` or `train.loss.kind: lm`: the truncated teacher trained on next-token loss).
"""

from __future__ import annotations

import logging

from nas.assistants.candidates import assistant_chain_net, load_assistant_supernet, recorded_chain
from nas.config import RunConfig
from nas.ray.train import run_train_on_ray
from nas.run import open_run, training_setup
from nas.storage import open_storage
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher
from supernet.train import TrainResult, train_supernet

log = logging.getLogger(__name__)


def run_train(config: RunConfig, device: str | None = None, subspaces: list[str] | None = None,
              progress: bool = True, teacher_free: bool = False, via_assistant: bool = False,
              workers: int | None = None, ray_address: str | None = None) -> list[TrainResult]:
    """Train locally, or with Ray Train when `workers` > 1 or a Ray address (argument or
    `ray.address`) is given (`nas.ray.train`)."""
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
        return run_train_on_ray(config, workers, address or "local", subspaces)
    run = open_run(config)  # config, space and relation heads checked before any weights load
    if teacher_free and run.space.teacher.family != "decoder":
        raise ValueError("train.loss.kind: 'lm' (teacher-free) is for decoders; this teacher is an encoder")
    chosen = run.subspaces(subspaces)
    chains = {}
    if via_assistant:  # every chain read before any weights load
        storage = open_storage(config.storage_url)
        chains = {sub.name: recorded_chain(storage, config, sub.name) for sub in chosen}
    dev = run.device(device)
    setup = training_setup(run, dev)
    assistants = load_assistant_supernet(run, dev) if any(chains.values()) else None
    results = []
    for sub in chosen:
        supernet = setup.supernet(sub)
        # The truncated teacher is the initialisation in every case; what teaches it differs.
        source: SuperLM | CachedTeacher | None = setup.source()
        if chains.get(sub.name):
            source = assistant_chain_net(run, chains[sub.name], assistants, setup.data, dev)
            log.info("[%s] distilling through %s", sub.name, " -> ".join(a.id for a in chains[sub.name]))
        result = train_supernet(supernet, source, sub, setup.data, config.train, run.relation_heads,
                                run.supernet_dir(sub.name), dev, progress)
        log.info("[%s] trained to step %d; checkpoint %s", sub.name, result.step, result.checkpoint)
        results.append(result)
    return results
