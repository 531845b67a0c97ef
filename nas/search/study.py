"""`nas search CONFIG`: multi-objective search of every sub-space's trained supernet.

One Optuna study per (run, sub-space) in the run's storage. Each trial suggests an architecture
(`nas.search.space`, the one translation between Optuna parameters and `Arch`), scores it with
inherited weights (`nas.search.evaluate`), and records the architecture, every objective, the budget
constraints, the sub-space and provenance as trial attributes. Trials run in-process, or, when a
Ray address is given, on resident Ray workers (`nas.ray.search`) that each run the study's own
trial loop on the same storage.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from nas.assistants.candidates import (
    ASSISTANTS,
    load_assistant_supernet,
    run_candidates,
    target_cost,
)
from nas.assistants.joint import JointEvaluator
from nas.config import BUDGET_KEYS, RunConfig, SearchConfig
from nas.latency import LatencyPredictor, load_predictor
from nas.ray.search import run_trials_on_ray
from nas.run import Run, load_data, load_teacher_net, load_trained_supernet, open_run, training_teacher
from nas.search.evaluate import (
    DistilledEvaluator,
    Evaluator,
    MeasuredLatency,
    SupernetEvaluator,
    held_out_targets,
)
from nas.search.space import TrialSpace
from nas.search.trials import (
    FINISHED,
    create_study_once,
    enqueue_warm_starts,
    finished_trials,
    make_sampler,
    run_trials,
)
from nas.storage import open_storage
from search_spaces import Arch, SubSpace
from supernet import teachers
from supernet.checkpoint import hash_file, latest_state
from supernet.data import TokenizedData
from supernet.distill import TeacherTargets
from supernet.superlm import SuperLM

log = logging.getLogger(__name__)


def study_name(config: RunConfig, sub: SubSpace) -> str:
    return f"{Path(config.run_dir).name}:{sub.name}"


# -- provenance -----------------------------------------------------------------------------

def _file_hash(directory: Path | None) -> str | None:
    if directory is None:
        return None
    h = hashlib.sha256()
    for f in sorted(directory.iterdir()):
        if f.suffix in (".safetensors", ".gguf", ".bin") or f.name == "config.json":
            hash_file(f, h)
    return h.hexdigest()[:16]


def provenance(
    run: Run, checkpoint_sha: str, checkpoint_step: int, data_fp: str, device: torch.device
) -> dict[str, Any]:
    versions = {}
    for pkg in ("distilnas", "torch", "transformers", "optuna", "ray", "datasets"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    source = teachers.resolve(run.config.teacher.id)
    return {
        "teacher_id": run.config.teacher.id,
        "teacher_revision": run.config.teacher.revision,
        "teacher_files_sha256": _file_hash(source.directory),
        "supernet_sha256": checkpoint_sha,
        "supernet_step": checkpoint_step,
        "data_fingerprint": data_fp,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu:{platform.machine()}",
        "packages": versions,
    }


# -- the recipe -----------------------------------------------------------------------------


class SearchError(RuntimeError):
    pass


def check_objectives(search: SearchConfig, family: str, logits: str) -> None:
    """Each objective must be one this run can measure (before any weights load)."""
    allowed = {"relation_kd", *BUDGET_KEYS}
    if family == "decoder":
        allowed.add("lm_loss")
        if logits != "none":
            allowed.add("logit_kd")
    for i, o in enumerate(search.objectives):
        if o.name not in allowed:
            raise ValueError(
                f"search.objectives.{i}.name: got {o.name!r}; this {family} run can measure "
                f"{sorted(allowed)}" + (" (logit_kd needs train.loss.logits)" if o.name == "logit_kd" else "")
            )


@dataclass
class SubspaceSearch:
    subspace: str
    study_name: str
    finished: int
    complete: int
    failed: int


@dataclass
class SearchSetup:
    """What every sub-space's study shares, resolved once per search: the run, the device, the
    held-out batches and the teacher's targets on them, latency, and for a joint search the
    teacher and the TA supernet."""

    run: Run
    search: SearchConfig
    device: torch.device
    data: TokenizedData
    batches: list[dict[str, torch.Tensor]]
    targets: list[TeacherTargets]
    predictor: LatencyPredictor | None
    wants_latency: bool
    teacher: SuperLM | None = None  # joint search only: its students distil from it or a TA
    assistants: SuperLM | None = None
    ta_choices: dict[str, dict[float, Arch]] = field(default_factory=dict)


def prepare_search(
    config: RunConfig,
    search: SearchConfig,
    subspaces: list[SubSpace],
    run: Run,
    device: torch.device,
    joint_assistant: bool,
) -> SearchSetup:
    """Every check first (objectives, latency predictor, trained supernets, TA supernet), then
    the data and the teacher's held-out targets."""
    check_objectives(search, run.space.teacher.family, config.train.loss.logits)
    wants_latency = "latency_ms" in [o.name for o in search.objectives] or "latency_ms" in search.budgets
    predictor = None
    if wants_latency and search.latency_device:
        predictor = load_predictor(run.run_dir, torch.device(search.latency_device), str(run.run_dir / "config.yaml"))
        if (predictor.batch, predictor.seq_len, predictor.dtype) != (
            search.batch_size,
            search.seq_len,
            search.latency_dtype,
        ):
            raise ValueError(
                f"search.latency_device: the {search.latency_device} predictor was fitted at batch "
                f"{predictor.batch} x {predictor.seq_len} {predictor.dtype}; the search counts costs at "
                f"{search.batch_size} x {search.seq_len} {search.latency_dtype}"
            )
    for sub in subspaces:  # fail before loading anything if a sub-space was never trained
        if latest_state(run.supernet_dir(sub.name)) is None:
            raise SearchError(
                f"no trained supernet for sub-space {sub.name!r} in {run.run_dir}; "
                f"run `nas train {run.run_dir / 'config.yaml'}` first"
            )
    ta_choices = joint_candidates(run, subspaces) if joint_assistant else {}
    data = load_data(run)
    teacher = load_teacher_net(run, device)
    batches = [
        {k: v.to(device) for k, v in b.items()}
        for b in data.held_out_batches(config.train.batch_size, search.eval_batches)
    ]
    targets = held_out_targets(teacher, batches, config.train.loss, run.relation_heads)
    return SearchSetup(
        run,
        search,
        device,
        data,
        batches,
        targets,
        predictor,
        wants_latency,
        # Candidates distil from it in a joint search or with a short-training proxy; otherwise
        # its held-out targets are all a search needs.
        teacher=training_teacher(run, teacher, data) if joint_assistant or search.proxy_steps else None,
        assistants=load_assistant_supernet(run, device) if joint_assistant else None,
        ta_choices=ta_choices,
    )


def run_search(
    config: RunConfig,
    trials: int | None = None,
    timeout: float | None = None,
    sampler: str | None = None,
    ray_address: str | None = None,
    subspaces: list[str] | None = None,
    device: str | None = None,
    progress: bool = False,
    joint_assistant: bool = False,
) -> list[SubspaceSearch]:
    """Search each chosen sub-space. `joint_assistant` searches the TA scale with the student:
    each trial distils its student from the TA it picks (see `nas.assistants.joint`)."""
    search = config.search.model_copy(
        update={k: v for k, v in (("trials", trials), ("sampler", sampler)) if v is not None}
    )
    run = open_run(config)
    storage = open_storage(config.storage_url)
    chosen = run.subspaces(subspaces)
    setup = prepare_search(config, search, chosen, run, run.device(device), joint_assistant)
    address = ray_address or config.ray.address
    deadline = None if timeout is None else time.monotonic() + timeout
    results = []
    try:
        for sub in chosen:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.append(search_subspace(setup, sub, storage, address, left, progress))
    finally:
        if address:
            import ray  # loaded only by Ray searches (seconds of import time), not to break a cycle

            ray.shutdown()  # the connection (or the local Ray) this search opened, also when it failed
    return results


def search_subspace(
    setup: SearchSetup,
    sub: SubSpace,
    storage: optuna.storages.BaseStorage,
    address: str | None,
    time_left: float | None,
    progress: bool,
) -> SubspaceSearch:
    """One sub-space's study: its supernet's evaluator, the study (created once), its trials."""
    run, search, dev = setup.run, setup.search, setup.device
    config = run.config
    supernet, ckpt = load_trained_supernet(run, sub.name, dev)
    latency = None
    if setup.wants_latency:
        latency = (
            setup.predictor.predict_ms
            if setup.predictor
            else MeasuredLatency(supernet, search.batch_size, search.seq_len, dev, search.latency_dtype)
        )
    base = SupernetEvaluator(supernet, setup.batches, setup.targets, config.train.loss, run.relation_heads,
                             search.batch_size, search.seq_len, search.budgets, dev, latency)
    evaluator: Evaluator = base
    prov = provenance(run, ckpt.state["weights_sha256"], ckpt.step, setup.data.fingerprint, dev)
    if setup.wants_latency:
        predictor = setup.predictor
        prov["latency"] = (
            {"source": "predicted", "device": predictor.device, "train_mape": predictor.train_mape}
            if predictor
            else {"source": "measured", "device": str(dev)}
        )
    space, name = TrialSpace(sub), study_name(config, sub)
    if setup.ta_choices or search.proxy_steps:
        assert setup.teacher is not None
        steps = config.assistants.distill_steps if setup.ta_choices else search.proxy_steps
        evaluator = DistilledEvaluator(base, supernet, setup.teacher, setup.data, config.train, run.relation_heads,
                                       steps)
    if setup.ta_choices:
        assert setup.assistants is not None and isinstance(evaluator, DistilledEvaluator)
        space, name = TrialSpace(sub, tuple(sorted(setup.ta_choices[sub.name]))), f"{name}:joint-ta"
        evaluator = JointEvaluator(evaluator, setup.assistants, setup.ta_choices[sub.name])
    created = create_study_once(storage, name, [o.direction for o in search.objectives])
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=make_sampler(search.sampler, sub, search, space.extra_dims())
    )
    for key, value in {
        "run_dir": str(run.run_dir.resolve()),
        "subspace": sub.name,
        "space": run.space.name,
        "objectives": [o.name for o in search.objectives],
        "budgets": search.budgets,
        "family": sub.teacher.family,
        "provenance": prov,
        "batch": search.batch_size,
        "seq_len": search.seq_len,
        "latency_dtype": search.latency_dtype,
        "proxy_steps": search.proxy_steps,
    }.items():
        study.set_user_attr(key, value)
    if created:  # optuna-dashboard labels the axes with these
        study.set_metric_names([o.name for o in search.objectives])
    if created or finished_trials(study) > 0:
        # Not by a process that found the study just created by another one (several
        # searches started at once): the creator enqueues, so the warm starts run once.
        enqueue_warm_starts(study, sub, search)
    remaining = search.trials - finished_trials(study)
    if remaining > 0 and (time_left is None or time_left > 0):
        log.info("[%s] study %s: %d trial(s) to run", sub.name, study.study_name, remaining)
        if address:
            run_trials_on_ray(study, space, evaluator, search=search, provenance=prov, n_trials=remaining,
                              timeout=time_left, address=address, ray_cfg=config.ray, storage_url=config.storage_url)
        else:
            run_trials(study, space, evaluator, search, prov, remaining, time_left, progress)
    done = study.get_trials(deepcopy=False, states=FINISHED)
    return SubspaceSearch(
        sub.name,
        study.study_name,
        len(done),
        sum(t.state == TrialState.COMPLETE for t in done),
        sum(t.state == TrialState.FAIL for t in done),
    )


def joint_candidates(run: Run, chosen: list[SubSpace]) -> dict[str, dict[float, Arch]]:
    """Per sub-space, the teachers a joint search may pick: sparsity 0.0 (the teacher itself,
    direct distillation) and every TA candidate no smaller than the sub-space's target. Checked
    before any weights load."""
    if latest_state(run.supernet_dir(ASSISTANTS)) is None:
        raise SearchError(
            f"--joint-assistant: no trained TA supernet in {run.run_dir}; run `nas schedule "
            f"{run.run_dir / 'config.yaml'}` first"
        )
    candidates = run_candidates(run)
    out = {}
    for sub in chosen:
        target = target_cost(run.config, sub)
        out[sub.name] = {0.0: run.space.teacher, **{c.grid_sparsity: c.arch for c in candidates if c.cost >= target}}
    return out


