"""`nas schedule CONFIG`: choose each sub-space's teacher assistant(s) by the λ-tradeoff.

Steps: train (or resume) the once-for-all TA supernet over the run's whole space; take one
candidate per grid sparsity; score each with P (task-agnostic, or a proxy task); T = P + λ·s;
per sub-space, the chain of the highest-T candidates no smaller than its target. Every
candidate's P is a trial of the study `<run>:assistants` (reused while the TA supernet is
unchanged, so a new λ costs nothing), and each sub-space's chain is a user attribute of that
study, which `nas train --via-assistant` reads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from nas.assistants import candidates as ta
from nas.config import RunConfig
from nas.run import open_run, training_setup
from nas.storage import open_storage
from supernet.train import train_supernet

log = logging.getLogger(__name__)


@dataclass
class Schedule:
    measure: str
    lam: float
    teacher_cost: float
    scored: list[ta.Scored]
    targets: dict[str, float] = field(default_factory=dict)
    chains: dict[str, list[ta.Scored]] = field(default_factory=dict)


def run_schedule(config: RunConfig, steps: int = 1, lam: float | None = None, subspaces: list[str] | None = None,
                 device: str | None = None, progress: bool = True) -> Schedule:
    if steps < 1:
        raise ValueError(f"--steps: got {steps}; must be >= 1")
    a = config.assistants
    lam = a.tradeoff if lam is None else lam
    run = open_run(config)
    storage = open_storage(config.storage_url)
    chosen = run.subspaces(subspaces)
    candidates = ta.run_candidates(run)
    pool = ta.assistant_set(candidates, run)
    dev = run.device(device)
    setup = training_setup(run, dev, reorder=True)
    data, teacher = setup.data, setup.teacher

    # The once-for-all TA supernet: from the importance-reordered teacher, resumed if trained.
    supernet = setup.supernet(pool)
    result = train_supernet(supernet, teacher, pool, data, ta.assistant_train_config(config), run.relation_heads,
                            run.supernet_dir(ta.ASSISTANTS), dev, progress)
    supernet.eval()
    sha = json.loads((result.checkpoint / "state.json").read_text())["weights_sha256"]

    source = "proxy_task" if a.proxy_task else "task_agnostic"
    study = optuna.create_study(storage=storage, study_name=ta.schedule_study_name(config), load_if_exists=True,
                                direction="maximize")
    known = {t.user_attrs["arch_id"]: t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
             if t.user_attrs.get("supernet_sha256") == sha and t.user_attrs.get("source") == source}
    batches = [{k: v.to(dev) for k, v in b.items()}
               for b in data.held_out_batches(config.train.batch_size, config.search.eval_batches)]
    held = ta.HeldOut.of(teacher, batches, config, run.relation_heads) if source == "task_agnostic" else None
    del teacher
    grid = CategoricalDistribution(list(a.grid))
    performance: dict[str, float] = {}
    for c in candidates:
        if c.arch.id not in performance:
            if c.arch.id in known:
                performance[c.arch.id] = known[c.arch.id]
            else:
                performance[c.arch.id] = (
                    ta.task_agnostic_performance(supernet, c.arch, held, config, run.relation_heads)
                    if held is not None
                    else ta.proxy_task_performance(supernet, c.arch, run)
                )
                study.add_trial(
                    optuna.trial.create_trial(
                        params={"grid_sparsity": c.grid_sparsity},
                        distributions={"grid_sparsity": grid},
                        value=performance[c.arch.id],
                        user_attrs={
                            "arch": c.arch.to_dict(),
                            "arch_id": c.arch.id,
                            "cost": c.cost,
                            "measure": a.measure,
                            "sparsity": c.sparsity,
                            "source": source,
                            "supernet_sha256": sha,
                        },
                    )
                )
    scored = [
        ta.Scored(c, performance[c.arch.id], ta.tradeoff(performance[c.arch.id], c.sparsity, lam)) for c in candidates
    ]
    schedule = Schedule(
        a.measure,
        lam,
        ta.cost_of(run.space.teacher, a.measure, config.search.batch_size, config.search.seq_len),
        scored,
    )
    for sub in chosen:
        target = ta.target_cost(config, sub)
        chain = ta.choose(scored, target, steps)
        schedule.targets[sub.name], schedule.chains[sub.name] = target, chain
        study.set_user_attr(
            f"chain:{sub.name}",
            {
                "lambda": lam,
                "measure": a.measure,
                "target_cost": target,
                "source": source,
                "chain": [ta.describe(s) for s in chain],
            },
        )
    study.set_user_attr("candidates", [ta.describe(s) for s in scored])
    study.set_user_attr("run_dir", str(run.run_dir.resolve()))
    log.info("TA supernet at step %d; %d candidates scored", result.step, len(performance))
    return schedule
