"""Scoring a sub-network without retraining: inherited-weight quality and its costs.

The teacher's targets on the held-out batches are computed once per run and kept in memory;
every candidate is then scored on the same batches in the same order with only its own forward
passes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from nas.config import QUALITY_OBJECTIVES
from nas.search.space import Candidate
from search_spaces import Arch, costs
from supernet.config import LossConfig, TrainConfig
from supernet.data import TokenizedData
from supernet.distill import TeacherTargets, evaluate, teacher_targets
from supernet.faults import maybe_raise
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher
from supernet.train import train_fixed


@dataclass
class Measurement:
    """Every objective of one architecture, and how each budget is met (<= 0 is met)."""

    arch: Arch
    objectives: dict[str, float]
    constraints: list[float] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(c <= 0 for c in self.constraints)


def constraint_values(objectives: dict[str, float], budgets: dict[str, float]) -> list[float]:
    """Optuna's convention: one value per budget, feasible when <= 0 (relative overshoot)."""
    return [objectives[key] / bound - 1.0 for key, bound in sorted(budgets.items())]


class Evaluator(Protocol):
    """What a search asks of an evaluator: every objective of one architecture (the candidate's
    `evaluator_args` as keywords). Evaluators are pickled into Ray's object store whole."""

    def measure(self, arch: Arch, **evaluator_args: Any) -> Measurement: ...


class SupernetEvaluator:
    """Scores architectures of one supernet with inherited weights against fixed held-out batches."""

    def __init__(self, supernet: SuperLM, batches: list[dict[str, torch.Tensor]], targets: list[TeacherTargets],
                 loss: LossConfig, relation_heads: int, batch: int, seq_len: int, budgets: dict[str, float],
                 device: torch.device, latency: Callable[[Arch], float] | None = None) -> None:
        self.supernet = supernet.eval()
        self.batches, self.targets = batches, targets
        self.loss, self.relation_heads = loss, relation_heads
        self.batch, self.seq_len, self.budgets = batch, seq_len, budgets
        self.device, self.latency = device, latency

    def with_supernet(self, supernet: SuperLM) -> SupernetEvaluator:
        """The same batches, targets and budgets on another network (e.g. a student trained apart)."""
        other = copy.copy(self)
        other.supernet = supernet.eval()
        return other

    def measure(self, arch: Arch) -> Measurement:
        objectives: dict[str, float] = dict(costs(arch, self.batch, self.seq_len))
        quality = evaluate(self.supernet, arch, self.batches, self.targets, self.loss, self.relation_heads)
        objectives.update({k: v for k, v in quality.items() if k in QUALITY_OBJECTIVES})
        if self.latency is not None:
            objectives["latency_ms"] = self.latency(arch)
        bad = [k for k, v in objectives.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite objective(s) {bad} for {arch.id}")
        return Measurement(arch, objectives, constraint_values(objectives, self.budgets))


class DistilledEvaluator:
    """A short-training proxy (`search.proxy_steps`): each candidate, initialised from the
    supernet's weights, is distilled for `steps` steps on the training rows (the same rows for
    every candidate) and then measured like any candidate. Inherited weights alone rank
    candidates only once the supernet is trained well; a few steps of the candidate's own
    training show which shapes recover fastest. The network is thrown away after scoring."""

    def __init__(self, base: SupernetEvaluator, init: SuperLM, teacher: SuperLM | CachedTeacher,
                 data: TokenizedData, cfg: TrainConfig, relation_heads: int, steps: int) -> None:
        self.base, self.init, self.teacher, self.data = base, init, teacher, data
        # Proxies are always distilled (a teacher-free run's candidates too), never resumed.
        self.cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"kind": "distill"})})
        self.relation_heads, self.steps = relation_heads, steps

    def measure(self, arch: Arch, teacher: SuperLM | CachedTeacher | None = None) -> Measurement:
        student, _ = train_fixed(arch, self.init, teacher or self.teacher, self.data, self.cfg, self.relation_heads,
                                 None, self.base.device, self.steps)
        return self.base.with_supernet(student).measure(arch)


@dataclass
class MeasuredLatency:
    """latency_ms by timing the extracted student on `device` (when no predictor is configured).
    A dataclass, not a closure, so that it pickles into Ray's object store with the evaluator."""

    supernet: SuperLM
    batch: int
    seq_len: int
    device: torch.device
    dtype: str = "fp32"

    def __call__(self, arch: Arch) -> float:
        from nas.latency import measure_forward

        model = self.supernet.extract(arch)
        return measure_forward(model, self.batch, self.seq_len, self.device, dtype=self.dtype).median_ms


def held_out_targets(teacher: SuperLM, batches: list[dict[str, torch.Tensor]], loss: LossConfig,
                     relation_heads: int) -> list[TeacherTargets]:
    """The teacher's targets on the held-out batches: computed once per run."""
    return [teacher_targets(teacher, b, loss, relation_heads) for b in batches]


def describe(m: Measurement) -> dict[str, Any]:
    return {"arch": m.arch.to_dict(), "arch_id": m.arch.id, "objectives": m.objectives,
            "constraints": m.constraints, "feasible": m.feasible}


def find_duplicate(study: optuna.Study, key: str) -> FrozenTrial | None:
    """A complete trial that evaluated the same candidate (`Candidate.key`)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("eval_key") == key and "objectives" in t.user_attrs:
            return t
    return None


def evaluate_candidate(candidate: Candidate, evaluator: Evaluator, study: optuna.Study | None,
                       study_name: str) -> tuple[dict[str, Any], Measurement]:
    """Measure one candidate (reusing a duplicate's measurement); returns the attributes to record."""
    arch, key = candidate.arch, candidate.key
    maybe_raise("evaluate", f"{study_name}:{arch.id}")
    attrs: dict[str, Any] = {"arch": arch.to_dict(), "arch_id": arch.id, "eval_key": key,
                             "subspace": candidate.subspace}
    duplicate = find_duplicate(study, key) if study is not None else None
    if duplicate is not None:  # evaluated before: reuse, do not evaluate again
        attrs["duplicate_of"] = duplicate.number
        return attrs, Measurement(arch, duplicate.user_attrs["objectives"], duplicate.user_attrs["constraints"])
    return attrs, evaluator.measure(arch, **candidate.evaluator_args)


def record(trial: optuna.Trial, m: Measurement, budgets: dict[str, float]) -> None:
    """A measurement as the trial's constraints (one per budget, sorted by name) and attributes."""
    for key, value in zip(sorted(budgets), m.constraints):  # the order of constraint_values
        trial.set_constraint(key, value)
    trial.set_user_attr("objectives", m.objectives)
    trial.set_user_attr("constraints", m.constraints)
    trial.set_user_attr("feasible", m.feasible)
