"""`nas search CONFIG`: multi-objective search of every sub-space's trained supernet.

One Optuna study per (run, sub-space) in the run's storage. Each trial suggests an architecture
(`suggest_arch`, the one translation between Optuna parameters and `Arch`), scores it with
inherited weights (`nas.evaluate`), and records the architecture, every objective, the budget
constraints, the sub-space and provenance as trial attributes. Trials run in-process, or as Ray
Tune trials (`OptunaSearch` on the same storage) when a Ray address is given.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import platform
import time
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from nas import assistants as assistant_net
from nas.config import RunConfig, SearchConfig
from nas.evaluate import Evaluator, MeasuredLatency, Measurement, held_out_targets
from nas.latency import load_predictor
from nas.run import Run, load_data, load_teacher_net, load_trained_supernet, open_run
from nas.storage import open_storage
from search_spaces import Arch, SubSpace
from supernet import teachers
from supernet.checkpoint import hash_file, load_latest
from supernet.faults import maybe_die, maybe_raise

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


# -- the space translation ------------------------------------------------------------------

def free_dims(sub: SubSpace) -> dict[str, tuple[Any, ...]]:
    """The dimensions a trial suggests. Encoders derive num_heads = hidden_size / head_dim and
    have no KV choice; FFN sizes are suggested as the sub-space states them (size or ratio)."""
    c = sub.choices
    dims: dict[str, tuple[Any, ...]] = {"num_layers": c.num_layers, "hidden_size": c.hidden_size, "head_dim": c.head_dim}
    if sub.teacher.family == "decoder":
        dims.update(num_heads=c.num_heads, num_kv_heads=c.num_kv_heads)
    if c.mlp_ratio:
        dims["mlp_ratio"] = c.mlp_ratio
    else:
        dims["intermediate_size"] = c.intermediate_size
    return dims


def arch_params(arch: Arch, sub: SubSpace) -> dict[str, Any]:
    """The trial parameters that denote `arch` (the inverse of `suggest_arch` on members)."""
    out: dict[str, Any] = {}
    for dim in free_dims(sub):
        if dim == "mlp_ratio":
            out[dim] = next(r for r in sub.choices.mlp_ratio
                            if Fraction(str(r)) * arch.hidden_size == arch.intermediate_size)
        else:
            out[dim] = getattr(arch, dim)
    return out


@functools.lru_cache(maxsize=16)
def _member_params(sub: SubSpace) -> list[tuple[Arch, dict[str, Any]]]:
    return [(a, arch_params(a, sub)) for a in sub.archs()]


def nearest_member(params: dict[str, Any], sub: SubSpace, avoid: frozenset[str] = frozenset()) -> Arch:
    """The member whose parameters are fewest choice-steps away, preferring members whose id is
    not in `avoid` (ties: enumeration order)."""
    rank = {d: {v: i for i, v in enumerate(vals)} for d, vals in free_dims(sub).items()}
    return min(_member_params(sub), key=lambda m: (m[0].id in avoid,
                                                   sum(abs(rank[d][m[1][d]] - rank[d][params[d]]) for d in rank)))[0]


def suggest_arch(trial: optuna.Trial, sub: SubSpace) -> Arch:
    """Suggest each free dimension categorically. A combination that is no member (excluded by the
    family's rules, or outside a cost band) is mapped to the nearest member not yet tried in the
    study (finished, failed or running), and the trial records that (`repaired`): many proposals
    outside a band would otherwise collapse onto the same few boundary members and spend the
    trial budget on repeats. The chosen id is recorded at once, so concurrent trials see it."""
    params = {dim: trial.suggest_categorical(dim, list(values)) for dim, values in free_dims(sub).items()}
    exact = next((arch for arch, member in _member_params(sub) if member == params), None)
    if exact is not None:
        arch = exact  # a repeat of an exact member is reused, not evaluated again (evaluate_candidate)
    else:
        arch = nearest_member(params, sub, _tried_ids(trial))
        trial.set_user_attr("repaired", True)
    trial.set_user_attr("arch_id", arch.id)
    return arch


def _tried_ids(trial: optuna.Trial) -> frozenset[str]:
    study = getattr(trial, "study", None)
    if study is None:  # a FixedTrial: no study to look at
        return frozenset()
    return frozenset(t.user_attrs["arch_id"] for t in study.get_trials(deepcopy=False)
                     if t.number != trial.number and "arch_id" in t.user_attrs)


# -- samplers and studies -------------------------------------------------------------------

def make_sampler(name: str, sub: SubSpace, search: SearchConfig,
                 extra_dims: dict[str, tuple[Any, ...]] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of a sub-space's study. Constrained samplers see the budgets through the
    constraints each trial sets (`Trial.set_constraint`, one per budget). `extra_dims` are the
    space's variables besides the architecture (the grid sampler must know every one)."""
    n_obj, seed = len(search.objectives), search.seed
    if name == "auto":
        name = "nsga2" if n_obj > 1 else "tpe"
    if name == "nsga2":
        population = max(4, min(50, search.trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        dims = {**free_dims(sub), **(extra_dims or {})}
        return optuna.samplers.GridSampler({d: list(v) for d, v in dims.items()}, seed=seed)
    raise ValueError(f"search.sampler: got {name!r}; allowed: auto, nsga2, tpe, gp, random, grid")


def study_name(config: RunConfig, sub: SubSpace) -> str:
    return f"{Path(config.run_dir).name}:{sub.name}"


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def find_duplicate(study: optuna.Study, key: str) -> FrozenTrial | None:
    """A complete trial that evaluated the same candidate (`eval_key`)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("eval_key") == key and "objectives" in t.user_attrs:
            return t
    return None


@dataclass(frozen=True)
class ArchSpace:
    """The define-by-run space of a plain search: `suggest_arch` on one sub-space. A space
    returns the trial's config: the architecture as JSON, its sub-space, and the evaluator's
    other arguments under `evaluator_args` (a joint search's `ta_sparsity`). Ray Tune adds the
    raw trial parameters to the config; only these keys are read."""

    sub: SubSpace

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"arch_json": suggest_arch(trial, self.sub).to_json(), "subspace": self.sub.name, "evaluator_args": {}}


def candidate_of(config: dict[str, Any]) -> tuple[Arch, dict[str, Any], str]:
    """A trial config as (architecture, the evaluator's other arguments, the key that identifies
    the evaluation for duplicate reuse)."""
    arch = Arch.from_json(config["arch_json"])
    extra = dict(config.get("evaluator_args") or {})
    key = arch.id + "".join(f"|{k}={v}" for k, v in sorted(extra.items()))
    return arch, extra, key


def evaluate_candidate(config: dict[str, Any], evaluator: Any, study: optuna.Study | None,
                       study_name: str) -> tuple[dict[str, Any], Measurement]:
    """Measure one trial config (reusing a duplicate's measurement); returns the attributes to record."""
    arch, extra, key = candidate_of(config)
    maybe_raise("evaluate", f"{study_name}:{arch.id}")
    attrs: dict[str, Any] = {"arch": arch.to_dict(), "arch_id": arch.id, "eval_key": key, "subspace": config["subspace"]}
    duplicate = find_duplicate(study, key) if study is not None else None
    if duplicate is not None:  # evaluated before: reuse, do not evaluate again
        attrs["duplicate_of"] = duplicate.number
        return attrs, Measurement(arch, duplicate.user_attrs["objectives"], duplicate.user_attrs["constraints"])
    return attrs, evaluator.measure(arch, **extra)


def record(trial: optuna.Trial, m: Measurement, budgets: dict[str, float]) -> None:
    for key, value in zip(sorted(budgets), m.constraints):  # the order of constraint_values
        trial.set_constraint(key, value)
    trial.set_user_attr("objectives", m.objectives)
    trial.set_user_attr("constraints", m.constraints)
    trial.set_user_attr("feasible", m.feasible)


# -- provenance -----------------------------------------------------------------------------

def _file_hash(directory: Path | None) -> str | None:
    if directory is None:
        return None
    h = hashlib.sha256()
    for f in sorted(directory.iterdir()):
        if f.suffix in (".safetensors", ".gguf", ".bin") or f.name == "config.json":
            hash_file(f, h)
    return h.hexdigest()[:16]


def provenance(run: Run, checkpoint_sha: str, checkpoint_step: int, data_fp: str, device: torch.device) -> dict[str, Any]:
    versions = {}
    for pkg in ("distilnas", "torch", "transformers", "optuna", "ray", "datasets"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    source = teachers.resolve(run.config.teacher.id)
    return {
        "teacher_id": run.config.teacher.id, "teacher_revision": run.config.teacher.revision,
        "teacher_files_sha256": _file_hash(source.directory), "supernet_sha256": checkpoint_sha,
        "supernet_step": checkpoint_step, "data_fingerprint": data_fp,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu:{platform.machine()}",
        "packages": versions,
    }


# -- the recipe -----------------------------------------------------------------------------

class SearchError(RuntimeError):
    pass


def check_objectives(search: SearchConfig, family: str, logits: str) -> None:
    """Each objective must be one this run can measure (before any weights load)."""
    allowed = {"relation_kd", "params", "params_non_embedding", "flops", "latency_ms"}
    if family == "decoder":
        allowed.add("lm_loss")
        if logits != "none":
            allowed.add("logit_kd")
    for i, o in enumerate(search.objectives):
        if o.name not in allowed:
            raise ValueError(f"search.objectives.{i}.name: got {o.name!r}; this {family} run can measure "
                             f"{sorted(allowed)}" + (" (logit_kd needs train.loss.logits)" if o.name == "logit_kd" else ""))


@dataclass
class SubspaceSearch:
    subspace: str
    study_name: str
    finished: int
    complete: int
    failed: int


def run_search(config: RunConfig, trials: int | None = None, timeout: float | None = None,
               sampler: str | None = None, ray_address: str | None = None, subspaces: list[str] | None = None,
               device: str | None = None, progress: bool = False, joint_assistant: bool = False) -> list[SubspaceSearch]:
    """Search each chosen sub-space. `joint_assistant` searches the TA scale with the student:
    each trial distils its student from the TA it picks (see `nas.assistants`)."""
    search = config.search.model_copy(update={k: v for k, v in (("trials", trials), ("sampler", sampler)) if v is not None})
    run = open_run(config)
    storage = open_storage(config.storage_url)
    dev = run.device(device)
    chosen = [run.space[n] for n in subspaces] if subspaces else list(run.space.subspaces)
    check_objectives(search, run.space.teacher.family, config.train.loss.logits)
    wants_latency = any(o.name == "latency_ms" for o in search.objectives) or "latency_ms" in search.budgets
    predictor = None
    if wants_latency and search.latency_device:  # checked before any weights load
        predictor = load_predictor(run.run_dir, torch.device(search.latency_device), str(run.run_dir / "config.yaml"))
        if (predictor.batch, predictor.seq_len, predictor.dtype) != (search.batch_size, search.seq_len, search.latency_dtype):
            raise ValueError(f"search.latency_device: the {search.latency_device} predictor was fitted at batch "
                             f"{predictor.batch} x {predictor.seq_len} {predictor.dtype}; the search counts costs at "
                             f"{search.batch_size} x {search.seq_len} {search.latency_dtype}")
    for sub in chosen:  # fail before loading anything if a sub-space was never trained
        if load_latest(run.supernet_dir(sub.name), with_optimizer=False) is None:
            raise SearchError(f"no trained supernet for sub-space {sub.name!r} in {run.run_dir}; "
                              f"run `nas train {run.run_dir / 'config.yaml'}` first")
    ta_choices = joint_candidates(run, chosen) if joint_assistant else {}
    data = load_data(run)
    teacher = load_teacher_net(run, dev)
    batches = [{k: v.to(dev) for k, v in b.items()}
               for b in data.held_out_batches(config.train.batch_size, search.eval_batches)]
    targets = held_out_targets(teacher, batches, config.train.loss, run.relation_heads)
    assistants = assistant_net.load_assistant_supernet(run, dev) if joint_assistant else None
    if not joint_assistant:
        del teacher  # its targets are all the search needs from it
    deadline = None if timeout is None else time.monotonic() + timeout
    results = []
    for sub in chosen:
        supernet, ckpt = load_trained_supernet(run, sub.name, dev)
        latency = None
        if wants_latency:
            latency = predictor.predict_ms if predictor else MeasuredLatency(
                supernet, search.batch_size, search.seq_len, dev, search.latency_dtype)
        evaluator = Evaluator(supernet, batches, targets, config.train.loss, run.relation_heads,
                              search.batch_size, search.seq_len, search.budgets, dev, latency)
        prov = provenance(run, ckpt.state["weights_sha256"], ckpt.step, data.fingerprint, dev)
        if wants_latency:
            prov["latency"] = ({"source": "predicted", "device": predictor.device, "train_mape": predictor.train_mape}
                               if predictor else {"source": "measured", "device": str(dev)})
        space: Callable[[optuna.Trial], dict[str, Any]] = ArchSpace(sub)
        name, extra_dims = study_name(config, sub), {}
        if joint_assistant:
            sparsities = tuple(sorted(ta_choices[sub.name]))
            space, name, extra_dims = assistant_net.JointSpace(sub, sparsities), f"{name}:joint-ta", {"ta_sparsity": sparsities}
            evaluator = assistant_net.JointEvaluator(evaluator, supernet, teacher, assistants, ta_choices[sub.name],
                                                     data, config.train, run.relation_heads,
                                                     config.assistants.distill_steps)
        created = create_study_once(storage, name, [o.direction for o in search.objectives])
        study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(search.sampler, sub, search, extra_dims))
        for key, value in {"run_dir": str(run.run_dir.resolve()), "subspace": sub.name, "space": run.space.name,
                           "objectives": [o.name for o in search.objectives], "budgets": search.budgets,
                           "family": sub.teacher.family, "provenance": prov, "batch": search.batch_size,
                           "seq_len": search.seq_len, "latency_dtype": search.latency_dtype}.items():
            study.set_user_attr(key, value)
        if created:  # optuna-dashboard labels the axes with these
            study.set_metric_names([o.name for o in search.objectives])
        if created or finished_trials(study) > 0:
            # Not by a process that found the study just created by another one (several
            # searches started at once): the creator enqueues, so the warm starts run once.
            enqueue_warm_starts(study, sub, search)
        remaining = search.trials - finished_trials(study)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if remaining > 0 and (left is None or left > 0):
            log.info("[%s] study %s: %d trial(s) to run", sub.name, study.study_name, remaining)
            if ray_address or config.ray.address:
                from nas.search_ray import run_trials_on_ray

                run_trials_on_ray(study, storage, space, evaluator, search, prov, remaining, left,
                                  ray_address or config.ray.address, config.ray, config.storage_url,
                                  run.run_dir / "ray_results")
            else:
                study.optimize(objective_fn(study, space, evaluator, search, prov), n_trials=remaining, timeout=left,
                               catch=(Exception,), callbacks=[_fault_point], show_progress_bar=progress)
        done = study.get_trials(deepcopy=False, states=FINISHED)
        results.append(SubspaceSearch(sub.name, study.study_name, len(done),
                                      sum(t.state == TrialState.COMPLETE for t in done),
                                      sum(t.state == TrialState.FAIL for t in done)))
        del supernet, evaluator
    if ray_address or config.ray.address:
        import ray

        ray.shutdown()  # the connection (or the local Ray) this search opened
    return results


def joint_candidates(run: Run, chosen: list[SubSpace]) -> dict[str, dict[float, Arch]]:
    """Per sub-space, the teachers a joint search may pick: sparsity 0.0 (the teacher itself,
    direct distillation) and every TA candidate no smaller than the sub-space's target. Checked
    before any weights load."""
    if load_latest(run.supernet_dir(assistant_net.ASSISTANTS), with_optimizer=False) is None:
        raise SearchError(f"--joint-assistant: no trained TA supernet in {run.run_dir}; run `nas schedule "
                          f"{run.run_dir / 'config.yaml'}` first")
    candidates = assistant_net.run_candidates(run)
    out = {}
    for sub in chosen:
        target = assistant_net.target_cost(run.config, sub)
        out[sub.name] = {0.0: run.space.teacher, **{c.grid_sparsity: c.arch for c in candidates if c.cost >= target}}
    return out


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
    """The truncated teacher (the sub-space's largest member) and the config's architectures
    that belong to the sub-space, once (skipped if already queued or evaluated)."""
    starts = [sub.largest]
    for raw in search.warm_start:
        arch = Arch.from_dict({**sub.teacher.to_dict(), **raw})
        if arch in sub:
            starts.append(arch)
    for arch in starts:
        study.enqueue_trial(arch_params(arch, sub), user_attrs={"warm_start": True}, skip_if_exists=True)


def objective_fn(study: optuna.Study, space: Callable[[optuna.Trial], dict[str, Any]], evaluator: Any,
                 search: SearchConfig, prov: dict[str, Any]) -> Callable[[optuna.Trial], list[float]]:
    names = [o.name for o in search.objectives]

    def objective(trial: optuna.Trial) -> list[float]:
        config = space(trial)
        trial.set_user_attr("provenance", prov)
        try:
            attrs, m = evaluate_candidate(config, evaluator, study, study.study_name)
        except Exception as err:
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:500])
            raise
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        record(trial, m, search.budgets)
        values = [m.objectives[n] for n in names]
        if not all(math.isfinite(v) for v in values):
            trial.set_user_attr("fail_reason", "non-finite objective")
        return values

    return objective
