"""Scoring a sub-network without retraining: inherited-weight quality and its costs.

The teacher's targets on the held-out batches are computed once per run and kept in memory;
every candidate is then scored on the same batches in the same order with only its own forward
passes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from search_spaces import Arch, flops, params
from supernet.config import LossConfig
from supernet.distill import TeacherTargets, evaluate, teacher_targets
from supernet.superlm import SuperLM

QUALITY = ("relation_kd", "logit_kd", "lm_loss")


@dataclass
class Measurement:
    """Every objective of one architecture, and how each budget is met (<= 0 is met)."""

    arch: Arch
    objectives: dict[str, float]
    constraints: list[float] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(c <= 0 for c in self.constraints)


def costs(arch: Arch, batch: int, seq_len: int) -> dict[str, float]:
    count = params(arch)
    return {"params": count.total, "params_non_embedding": count.non_embedding,
            "flops": flops(arch, batch, seq_len)}


def constraint_values(objectives: dict[str, float], budgets: dict[str, float]) -> list[float]:
    """Optuna's convention: one value per budget, feasible when <= 0 (relative overshoot)."""
    return [objectives[key] / bound - 1.0 for key, bound in sorted(budgets.items())]


class Evaluator:
    """Scores architectures of one supernet against fixed held-out batches."""

    def __init__(self, supernet: SuperLM, batches: list[dict[str, torch.Tensor]], targets: list[TeacherTargets],
                 loss: LossConfig, relation_heads: int, batch: int, seq_len: int, budgets: dict[str, float],
                 device: torch.device, latency: Callable[[Arch], float] | None = None) -> None:
        self.supernet = supernet.eval()
        self.batches, self.targets = batches, targets
        self.loss, self.relation_heads = loss, relation_heads
        self.batch, self.seq_len, self.budgets = batch, seq_len, budgets
        self.device, self.latency = device, latency

    def with_supernet(self, supernet: SuperLM) -> Evaluator:
        """The same batches, targets and budgets on another network (e.g. a student trained apart)."""
        other = copy.copy(self)
        other.supernet = supernet.eval()
        return other

    def measure(self, arch: Arch) -> Measurement:
        objectives: dict[str, float] = dict(costs(arch, self.batch, self.seq_len))
        quality = evaluate(self.supernet, arch, self.batches, self.targets, self.loss, self.relation_heads)
        objectives.update({k: v for k, v in quality.items() if k in QUALITY})
        if self.latency is not None:
            objectives["latency_ms"] = self.latency(arch)
        bad = [k for k, v in objectives.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite objective(s) {bad} for {arch.id}")
        return Measurement(arch, objectives, constraint_values(objectives, self.budgets))


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
