"""Teacher assistants: candidates at a grid of scales, their score, and the λ-tradeoff choice.

When the student is far smaller than the teacher, distilling through a teacher assistant (TA)
of intermediate scale helps (Mirzadeh et al.). Choosing the TA's scale by trial and error costs a
full distillation per scale; MiniDisc scores every candidate once instead:

    T = P + λ · s

with P in [0, 1] the candidate's performance and s its sparsity (the fraction of the teacher's
params or FLOPs it removes), and picks the argmax among candidates no smaller than the student.

- Candidates (AutoDisc's gridding): for each grid sparsity, the member of the run's whole space
  (the hull of its sub-spaces) nearest in cost to (1 - s) of the teacher; among members within 1%
  of that, the most uniformly shrunk. All come from one once-for-all supernet over that hull,
  initialised from the importance-reordered teacher, so each keeps the most important units.
- P, task-agnostic by default: decoders, top-1 next-token agreement with the teacher on held-out
  text; encoders, exp(-relation KD) (the relation KL, or MSE, of the candidate's last layer
  against the teacher's; 1 when identical). With `assistants.proxy_task`, the dev accuracy of the
  candidate fine-tuned on that task (AutoDistil's task proxy).
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna
import torch
from torch import Tensor

from nas.config import RunConfig
from nas.export import save_model
from nas.finetune import finetune
from nas.run import Run, load_trained_supernet
from search_spaces import Arch, ArchList, SubSpace, flops, params
from supernet.config import TrainConfig
from supernet.data import TokenizedData
from supernet.distill import evaluate, teacher_targets
from supernet.registry import build_supernet
from supernet.superlm import SuperLM
from supernet.train import train_fixed

log = logging.getLogger(__name__)
ASSISTANTS = "assistants"  # the name of the once-for-all TA supernet's sub-space and directory


# -- candidates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TACandidate:
    grid_sparsity: float  # the grid point
    arch: Arch
    cost: float           # in the configured measure (params, or FLOPs at the search's batch x seq_len)
    sparsity: float       # 1 - cost / teacher cost (the actual one, used in T)


def cost_of(arch: Arch, measure: str, batch: int, seq_len: int) -> float:
    return float(params(arch).total if measure == "params" else flops(arch, batch, seq_len))


def _shrink_spread(arch: Arch, teacher: Arch) -> float:
    """How unevenly `arch` shrinks the teacher: the spread of log(dimension ratio) over depth,
    width, attention width, KV width and FFN width (0 for a uniform shrink)."""
    ratios = [arch.num_layers / teacher.num_layers, arch.hidden_size / teacher.hidden_size,
              arch.attention_width / teacher.attention_width, arch.kv_width / teacher.kv_width,
              arch.intermediate_size / teacher.intermediate_size]
    return float(np.std(np.log(ratios)))


def candidate_grid(pool: Sequence[Arch], teacher: Arch, grid: Sequence[float], measure: str,
                   batch: int = 1, seq_len: int = 128) -> list[TACandidate]:
    """One candidate per grid sparsity, in grid order (two grid points may pick the same member)."""
    full = cost_of(teacher, measure, batch, seq_len)
    costs = [(a, cost_of(a, measure, batch, seq_len)) for a in pool]
    out = []
    for s in grid:
        target = (1.0 - s) * full
        best_gap = min(abs(math.log(c / target)) for _, c in costs)
        near = [(a, c) for a, c in costs if abs(math.log(c / target)) <= best_gap + 0.01]
        arch, cost = min(near, key=lambda ac: (_shrink_spread(ac[0], teacher), abs(math.log(ac[1] / target))))
        out.append(TACandidate(s, arch, cost, 1.0 - cost / full))
    return out


# -- the score and the choice -------------------------------------------------------------

def tradeoff(performance: float, sparsity: float, lam: float) -> float:
    """MiniDisc's T = P + λ·s."""
    return performance + lam * sparsity


def top1_agreement(student_logits: Tensor, teacher_top1: Tensor, mask: Tensor) -> tuple[int, int]:
    """(agreeing positions, real positions): where the student's argmax next token equals the
    teacher's. logits (B, T, V); teacher_top1 and mask (B, T)."""
    real = mask.bool()
    agree = (student_logits.argmax(-1) == teacher_top1) & real
    return int(agree.sum()), int(real.sum())


def relation_performance(relation_kd: float) -> float:
    """The encoders' task-agnostic P: exp(-relation KD), in (0, 1], 1 when identical to the teacher."""
    return math.exp(-relation_kd)


@dataclass
class Scored:
    candidate: TACandidate
    performance: float
    score: float  # T


def choose(scored: Sequence[Scored], target_cost: float, steps: int = 1) -> list[Scored]:
    """The TA chain: the `steps` distinct candidates with the highest T among those no smaller
    than the student's target cost, largest first (teacher -> TA1 -> ... -> student). Empty when
    none is eligible: the student is then distilled from the teacher directly."""
    if steps < 1:
        raise ValueError(f"--steps: got {steps}; must be >= 1")
    eligible: dict[Arch, Scored] = {}
    for s in sorted(scored, key=lambda s: -s.score):
        if s.candidate.cost >= target_cost:
            eligible.setdefault(s.candidate.arch, s)
    chain = list(eligible.values())[:steps]
    return sorted(chain, key=lambda s: -s.candidate.cost)


# -- measuring P ----------------------------------------------------------------------------

@dataclass
class HeldOut:
    """The teacher on the held-out batches, computed once for every candidate."""

    batches: list[dict[str, Tensor]]
    targets: list[Any]             # TeacherTargets per batch (relation targets)
    teacher_top1: list[Tensor] | None  # decoders: the teacher's argmax next token per position

    @classmethod
    def of(cls, teacher: SuperLM, batches: list[dict[str, Tensor]], config: RunConfig, heads: int) -> HeldOut:
        targets = [teacher_targets(teacher, b, config.train.loss, heads) for b in batches]
        top1 = None
        if teacher.FAMILY == "decoder":
            with torch.no_grad():
                top1 = [teacher(b["input_ids"], b["attention_mask"]).logits.argmax(-1) for b in batches]
        return cls(batches, targets, top1)


@torch.no_grad()
def task_agnostic_performance(net: SuperLM, arch: Arch, held: HeldOut, config: RunConfig, heads: int) -> float:
    if held.teacher_top1 is not None:
        net.set_active(arch)
        agree = total = 0
        for batch, top1 in zip(held.batches, held.teacher_top1):
            # Position t's prediction counts where both t and t+1 are real tokens.
            mask = batch["attention_mask"][:, :-1] * batch["attention_mask"][:, 1:]
            a, n = top1_agreement(net(batch["input_ids"], batch["attention_mask"]).logits[:, :-1], top1[:, :-1], mask)
            agree, total = agree + a, total + n
        return agree / total
    losses = evaluate(net, arch, held.batches, held.targets, config.train.loss, heads)
    return relation_performance(losses["relation_kd"])


def proxy_task_performance(net: SuperLM, arch: Arch, run: Run) -> float:
    """AutoDistil's task proxy: the candidate exported, fine-tuned on the proxy task, dev accuracy."""

    task = run.config.assistants.proxy_task
    assert task is not None
    with tempfile.TemporaryDirectory(prefix="ta-proxy-") as tmp:
        save_model(net.extract(arch), run.config, Path(tmp))
        result = finetune(tmp, task.data, task.text_column, task.label_column, "classification", epochs=task.epochs,
                          seq_len=task.seq_len, lr=task.lr, max_examples=task.max_examples,
                          seed=run.config.data.seed, split_seed=run.config.data.seed)
    return result.metrics["dev_accuracy"]


# -- the once-for-all TA supernet and fixed-shape distillation ------------------------------

def assistant_subspace(run: Run) -> SubSpace:
    """The hull of the run's sub-spaces: every TA candidate is a member."""
    return replace(run.space.partition(1).subspaces[0], name=ASSISTANTS)


def run_candidates(run: Run) -> list[TACandidate]:
    """The run's TA candidates: the grid over the hull of its sub-spaces."""
    a, search = run.config.assistants, run.config.search
    return candidate_grid(assistant_subspace(run).archs(), run.space.teacher, a.grid, a.measure,
                          search.batch_size, search.seq_len)


def assistant_set(candidates: Sequence[TACandidate], run: Run) -> ArchList:
    """The TA candidates as one set: the once-for-all TA supernet trains on them and holds only
    their hull."""
    return ArchList(ASSISTANTS, run.space.teacher, tuple(dict.fromkeys(c.arch for c in candidates)),
                    run.space.layer_policy)


def distilling(cfg: TrainConfig, **update: Any) -> TrainConfig:
    """`cfg` with distillation as its loss: TAs are always distilled, even in a teacher-free run."""
    return cfg.model_copy(update={**update, "loss": cfg.loss.model_copy(update={"kind": "distill"})})


def assistant_train_config(config: RunConfig) -> TrainConfig:
    return distilling(config.train, steps=config.assistants.supernet_steps or config.train.steps)


def distil_fixed(arch: Arch, init: SuperLM, teacher: SuperLM, data: TokenizedData, cfg: TrainConfig,
                 relation_heads: int, out_dir: Path, device: torch.device, steps: int) -> SuperLM:
    """Distil the fixed-shape network `arch`, initialised from `init`'s weights, from `teacher`."""
    return train_fixed(arch, init, teacher, data, distilling(cfg), relation_heads, out_dir, device, steps)[0]


def as_teacher(net: SuperLM) -> SuperLM:
    return net.eval().requires_grad_(False)


def load_assistant_supernet(run: Run, device: torch.device) -> SuperLM:

    try:
        net, _ = load_trained_supernet(run, ASSISTANTS, device, assistant_set(run_candidates(run), run))
    except FileNotFoundError:
        raise FileNotFoundError(f"no trained TA supernet in {run.run_dir}; run `nas schedule "
                                f"{run.run_dir / 'config.yaml'}` first") from None
    return net


def assistant_chain_net(run: Run, chain: Sequence[Arch], assistants: SuperLM, data: TokenizedData,
                        device: torch.device) -> SuperLM:
    """The last TA of `chain` as a frozen teacher: the first is a trained sub-network of the TA
    supernet; each next one is distilled from the previous (cached under the run directory)."""
    cfg = run.config
    net = build_supernet(assistants.extract(chain[0])).to(device)
    for previous, arch in zip(chain, chain[1:]):
        out_dir = run.run_dir / ASSISTANTS / f"{arch.id}-from-{previous.id}"
        net = distil_fixed(arch, assistants, as_teacher(net), data, cfg.train, run.relation_heads, out_dir, device,
                           cfg.assistants.distill_steps)
    return as_teacher(net)


# -- the recorded schedule ------------------------------------------------------------------

def schedule_study_name(config: RunConfig) -> str:
    return f"{Path(config.run_dir).name}:{ASSISTANTS}"


def target_cost(config: RunConfig, sub: SubSpace) -> float:
    """The student's target: the run's budget in the TA measure if set, else the sub-space's
    largest member."""
    a = config.assistants
    budget = config.search.budgets.get(a.measure)
    if budget is not None:
        return float(budget)
    return cost_of(sub.largest, a.measure, config.search.batch_size, config.search.seq_len)


def recorded_chain(storage: optuna.storages.BaseStorage, config: RunConfig, subspace: str) -> list[Arch]:
    """The TA chain `nas schedule` recorded for a sub-space (empty: distil directly)."""
    try:
        study = optuna.load_study(study_name=schedule_study_name(config), storage=storage)
    except KeyError:
        study = None
    entry = study.user_attrs.get(f"chain:{subspace}") if study else None
    if entry is None:
        raise LookupError(f"no teacher-assistant schedule for sub-space {subspace!r} in {config.storage_url}; "
                          f"run `nas schedule {Path(config.run_dir) / 'config.yaml'}` first")
    return [Arch.from_dict(row["arch"]) for row in entry["chain"]]


def describe(s: Scored) -> dict[str, Any]:
    c = s.candidate
    return {"grid_sparsity": c.grid_sparsity, "sparsity": c.sparsity, "cost": c.cost, "arch_id": c.arch.id,
            "arch": c.arch.to_dict(), "params": params(c.arch).total, "performance": s.performance, "score": s.score}
