"""Running a study's trials: its sampler, the objective every trial runs, warm starts.

The same objective runs in-process (`run_trials`) and inside the resident Ray workers of a Ray
search (`nas.ray.search`), so a trial's attributes are the same wherever it ran.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from nas.config import SearchConfig
from nas.search.evaluate import Evaluator, evaluate_candidate, record
from nas.search.space import TrialSpace, arch_params, free_dims
from search_spaces import Arch, SubSpace, baselines_under
from supernet.faults import maybe_die

FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def make_sampler(name: str, sub: SubSpace, search: SearchConfig,
                 extra_dims: dict[str, tuple[Any, ...]] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of a sub-space's study. Constrained samplers see the budgets through the
    constraints each trial sets (`Trial.set_constraint`, one per budget). `extra_dims` are the
    space's variables besides the architecture (the grid sampler must know every one)."""
    seed = search.seed
    if name == "auto":
        # TPE for one objective or several: on a trained SmolLM2 supernet's 1,281-member band under a
        # FLOPs budget, 20 seeds, it found 0.995 of the exact front's hypervolume at 25% of the space
        # (NSGA-II 0.982, random 0.953) and 0.979 at 10% (NSGA-II 0.935): benchmarks/search_efficiency.py.
        name = "tpe"
    if name == "nsga2":
        population = max(4, min(50, search.trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "tpe":
        # constant_liar: trials running in parallel (Ray workers) count as bad guesses, so
        # concurrent proposals spread out instead of repeating one another.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        dims = {**free_dims(sub), **(extra_dims or {})}
        return optuna.samplers.GridSampler({d: list(v) for d, v in dims.items()}, seed=seed)
    raise ValueError(f"search.sampler: got {name!r}; allowed: auto, nsga2, tpe, gp, random, grid")


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _fault_point(study: optuna.Study, trial: FrozenTrial) -> None:
    maybe_die("search-trial", trial.number + 1)


def create_study_once(storage: optuna.storages.BaseStorage, name: str, directions: list[str]) -> bool:
    """Create the study unless it exists; True only in the one process that created it."""
    try:
        storage.create_new_study([optuna.study.StudyDirection[d.upper()] for d in directions], name)
        return True
    except optuna.exceptions.DuplicatedStudyError:
        return False


def enqueue_warm_starts(study: optuna.Study, sub: SubSpace, search: SearchConfig) -> None:
    """Once each (skipped if already queued or evaluated): the truncated teacher (the sub-space's
    largest member); under budgets, the baselines a user would try (`baselines_under`: the layer
    drop, the uniform shrink and the largest member that meet them), so the search can at worst
    return one of them; then the config's architectures that belong to the sub-space."""
    starts = [sub.largest, *baselines_under(sub, search.budgets, search.batch_size, search.seq_len).values()]
    for raw in search.warm_start:
        arch = Arch.from_dict({**sub.teacher.to_dict(), **raw})
        if arch in sub:
            starts.append(arch)
    for arch in starts:
        study.enqueue_trial(arch_params(arch, sub), user_attrs={"warm_start": True}, skip_if_exists=True)


def objective_fn(study: optuna.Study, space: TrialSpace, evaluator: Evaluator, search: SearchConfig,
                 prov: dict[str, Any], attrs: dict[str, Any] | None = None) -> Callable[[optuna.Trial], list[float]]:
    """The objective of every trial: the candidate's measurement (or a duplicate's), recorded as
    attributes and constraints; `attrs` are set on every trial too (a Ray worker's node)."""
    names = [o.name for o in search.objectives]

    def objective(trial: optuna.Trial) -> list[float]:
        # Optuna never finds a RUNNING trial stale if it has no heartbeat yet, and its heartbeat
        # thread's first write can come after a process is killed (seen once in 10 Ray-worker kills
        # in benchmarks/faults.py): the trial stayed RUNNING for good. Write one before any work.
        storage = study._storage
        if is_heartbeat_enabled(storage) and isinstance(storage, BaseHeartbeat):
            storage.record_heartbeat(trial._trial_id)
        candidate = space.candidate(trial)
        trial.set_user_attr("provenance", prov)
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, value)
        maybe_die("evaluate", trial.number + 1)  # fault injection: killed with the trial RUNNING
        try:
            found, m = evaluate_candidate(candidate, evaluator, study, study.study_name)
        except Exception as err:
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:500])
            raise
        for key, value in found.items():
            trial.set_user_attr(key, value)
        record(trial, m, search.budgets)
        values = [m.objectives[n] for n in names]
        if not all(math.isfinite(v) for v in values):
            trial.set_user_attr("fail_reason", "non-finite objective")
        return values

    return objective


def run_trials(study: optuna.Study, space: TrialSpace, evaluator: Evaluator, search: SearchConfig,
               prov: dict[str, Any], n_trials: int, timeout: float | None, progress: bool = False,
               attrs: dict[str, Any] | None = None) -> None:
    """Run `n_trials` trials of `study` here; a failing candidate is a FAIL trial with its reason
    and the loop goes on."""
    study.optimize(objective_fn(study, space, evaluator, search, prov, attrs), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=[_fault_point], show_progress_bar=progress)
