"""The supernet training loop: sandwich-rule distillation from a frozen teacher.

Every step draws the sandwich set of the sub-space (largest, smallest, n random; seeded by
(seed, step, sub-space)), runs the teacher once per micro-batch, accumulates the gradients of
every sampled sub-network, clips, and takes one AdamW step. Batches and sandwich sets are pure
functions of the step, so a resumed run continues the same sequence exactly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from search_spaces import Arch, SubSpace, flops
from supernet.checkpoint import load_latest, save_checkpoint
from supernet.config import TrainConfig
from supernet.data import TokenizedData
from supernet.distill import evaluate, subnet_losses, teacher_targets
from supernet.faults import maybe_die
from supernet.registry import build_supernet
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """Too many consecutive steps had a NaN or infinite loss."""


@dataclass
class TrainResult:
    subspace: str
    step: int
    checkpoint: Path | None
    skipped_steps: list[int] = field(default_factory=list)
    last_eval: dict[str, Any] = field(default_factory=dict)
    train_flops: float = 0.0  # forward + backward of every sub-network, plus the teacher's forwards


def sandwich_for_step(sub: SubSpace, seed: int, step: int, n_random: int) -> list[Arch]:
    """The sub-networks of one step: largest, smallest and `n_random` uniform draws."""
    rng = np.random.default_rng([seed, step, zlib.crc32(sub.name.encode())])
    return sub.sandwich(rng, n_random)


@dataclass(frozen=True)
class Shard:
    """This process's place in data-parallel training (Ray Train workers): it takes rows
    [rank*B, (rank+1)*B) of the step's global batch of world*B rows, so W workers see exactly
    the batch one worker would see with W*B rows."""

    rank: int
    world: int


def _average_gradients(params: list[torch.Tensor], finite: bool) -> bool:
    """All-reduce, across the process group, whether every rank's loss was finite and then the
    mean gradient. Parameters outside every sampled sub-network have no gradient: they join the
    reduction as zeros, so every rank makes the same collective calls (no DDP unused-parameter
    hang)."""
    import torch.distributed as dist

    flag = torch.tensor([0.0 if finite else 1.0])
    dist.all_reduce(flag)
    if flag.item() > 0:
        return False
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads]).float()
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(g).to(g.dtype)
        offset += g.numel()
    return True


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_frac` of the steps, then linear decay to zero."""
    warmup = int(cfg.warmup_frac * cfg.steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - warmup))


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def step_flops(archs: list[Arch], teacher: Arch | None, batch: int, seq_len: int, micro_batches: int) -> float:
    """Training compute of one step: 3x the forward FLOPs of each sub-network (forward and
    backward) and one forward of the teacher per micro-batch (none when teacher-free)."""
    student = sum(3 * flops(a, batch, seq_len) for a in archs)
    return float(micro_batches * (student + (flops(teacher, batch, seq_len) if teacher is not None else 0)))


def train_supernet(supernet: SuperLM, teacher: SuperLM | CachedTeacher | None, sub: SubSpace, data: TokenizedData,
                   cfg: TrainConfig, relation_heads: int, out_dir: Path | None, device: torch.device,
                   progress: bool = True, shard: Shard | None = None,
                   on_checkpoint: Callable[[int, Path | None], None] | None = None) -> TrainResult:
    """Train `supernet` on sub-space `sub`, resuming from the newest checkpoint in `out_dir` (None:
    nothing read or written, for a throw-away network such as a search proxy's).
    `teacher` is None for teacher-free training (`train.loss.kind: lm`). With a `shard`, this is
    one data-parallel worker: gradients are averaged over the process group and only rank 0
    writes logs and checkpoints; `on_checkpoint(step, path)` runs on every rank at each
    checkpoint (path None off rank 0)."""
    writer = shard is None or shard.rank == 0
    weights = supernet.weights()
    params = list(weights.values())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, skipped, spent = 0, [], 0.0
    ckpt = load_latest(out_dir) if out_dir is not None else None
    if ckpt is not None:
        found, wanted = ckpt.state.get("supernet"), json.loads(json.dumps(supernet.describe()))
        if found is not None and found != wanted:
            raise ValueError(f"checkpoint {ckpt.path}: holds a network of shape {found.get('shape')}, this run "
                             f"trains {wanted['shape']}; a resume needs the same network: remove {out_dir} "
                             f"or train into another directory")
        with torch.no_grad():
            for name, w in weights.items():
                w.copy_(ckpt.weights[name])
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        start, skipped = ckpt.step, list(ckpt.state.get("skipped_steps", []))
        spent = float(ckpt.state.get("train_flops", 0.0))
        log.info("[%s] resuming at step %d from %s", sub.name, start, ckpt.path)
    if start >= cfg.steps:
        return TrainResult(sub.name, start, ckpt.path if ckpt else None, skipped,
                           ckpt.state.get("last_eval", {}) if ckpt else {}, spent)

    def targets_of(batch: dict[str, torch.Tensor]) -> Any:
        return None if teacher is None else teacher_targets(teacher, batch, cfg.loss, relation_heads)

    eval_batches = [_to(b, device) for b in data.held_out_batches(cfg.batch_size, cfg.eval_batches)]
    with _autocast(device):
        eval_targets = [targets_of(b) for b in eval_batches]
    seq_len = data.train["input_ids"].shape[1]
    writer = writer and out_dir is not None
    log_path = out_dir / "train.jsonl" if out_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def batch_for(step: int, micro: int) -> dict[str, torch.Tensor]:
        if shard is None:
            return _to(data.train_batch(step, micro, cfg.grad_accum, cfg.batch_size, cfg.seed), device)
        rows = data.train_batch(step, micro, cfg.grad_accum, cfg.batch_size * shard.world, cfg.seed)
        lo = shard.rank * cfg.batch_size
        return _to({k: v[lo:lo + cfg.batch_size] for k, v in rows.items()}, device)

    bad_in_a_row, last_eval, checkpoint = 0, {}, ckpt.path if ckpt else None
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"train {sub.name}",
               disable=not progress, dynamic_ncols=True)
    supernet.train()
    for step in bar:
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        archs = sandwich_for_step(sub, cfg.seed, step, cfg.n_random)
        losses: dict[str, float] = {}
        finite = True
        for micro in range(cfg.grad_accum):
            batch = batch_for(step, micro)
            with _autocast(device):
                targets = targets_of(batch)
                for arch in archs:
                    parts = subnet_losses(supernet, arch, batch, targets, cfg.loss, relation_heads)
                    total = parts["total"] / (len(archs) * cfg.grad_accum)
                    if not torch.isfinite(total):
                        finite = False
                        break
                    total.backward()
                    for k, v in parts.items():
                        losses[k] = losses.get(k, 0.0) + float(v.detach()) / (len(archs) * cfg.grad_accum)
            if not finite:
                break
        if shard is not None:
            finite = _average_gradients(params, finite)
        if not finite:
            # Skip the step: no update, nothing saved; the last good checkpoint stays.
            optimizer.zero_grad(set_to_none=True)
            skipped.append(step)
            bad_in_a_row += 1
            log.warning("[%s] step %d: non-finite loss, step skipped (%d in a row)", sub.name, step, bad_in_a_row)
            if writer:
                _append(log_path, {"step": step, "skipped": True, "reason": "non-finite loss"})
            if bad_in_a_row >= cfg.max_bad_steps:
                raise TrainingDivergedError(
                    f"training of sub-space {sub.name} diverged: {bad_in_a_row} consecutive steps with a "
                    f"NaN/inf loss (train.max_bad_steps={cfg.max_bad_steps}); last good checkpoint: {checkpoint}")
            continue
        bad_in_a_row = 0
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        done = step + 1
        seconds = time.perf_counter() - t0
        tokens = len(archs) * cfg.grad_accum * cfg.batch_size * seq_len
        spent += step_flops(archs, teacher.full_arch if teacher is not None else None,
                            cfg.batch_size * (shard.world if shard else 1), seq_len, cfg.grad_accum)
        record: dict[str, Any] = {"step": done, "lr": learning_rate(cfg, step), "grad_norm": float(grad_norm),
                                  "tokens_per_s": tokens / seconds, "train_flops": spent,
                                  "archs": [a.id for a in archs], **losses}
        if done % cfg.eval_every == 0 or (done == cfg.steps and out_dir is not None):
            supernet.eval()
            with _autocast(device):
                last_eval = {name: evaluate(supernet, arch, eval_batches, eval_targets, cfg.loss, relation_heads)
                             for name, arch in (("largest", sub.largest), ("smallest", sub.smallest))}
            supernet.train()
            record["eval"] = last_eval
        if writer:
            _append(log_path, record)
        bar.set_postfix(loss=f"{losses['total']:.4f}", tok_s=f"{tokens / seconds:.0f}")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            if writer:
                checkpoint = save_checkpoint(out_dir, done, weights, optimizer.state_dict(), {
                    "subspace": sub.name, "skipped_steps": skipped, "last_eval": last_eval,
                    "done": done == cfg.steps, "supernet": supernet.describe(), "train_flops": spent,
                    "workers": shard.world if shard else 1,
                })
                log.info("[%s] step %d/%d, loss %.4f, checkpoint %s", sub.name, done, cfg.steps, losses["total"],
                         checkpoint.name)
            if on_checkpoint is not None:
                on_checkpoint(done, checkpoint if writer else None)
        maybe_die("train-step", done)
    supernet.eval()
    return TrainResult(sub.name, cfg.steps, checkpoint, skipped, last_eval, spent)


def train_fixed(
    arch: Arch,
    init: SuperLM,
    teacher: SuperLM | CachedTeacher | None,
    data: TokenizedData,
    cfg: TrainConfig,
    relation_heads: int,
    out_dir: Path | None,
    device: torch.device,
    steps: int,
) -> tuple[SuperLM, TrainResult]:
    """Train the fixed-shape network `arch`, initialised from `init`'s weights (a truncation of
    it), for `steps` steps from `teacher` (None: teacher-free), resumable in `out_dir` (None: a
    throw-away network: no checkpoint, log or final evaluation). Returns it as a SuperLM of its
    own shape."""
    net = build_supernet(init.extract(arch)).to(device)
    eval_every = steps if out_dir is not None else steps + 1  # a throw-away network is not evaluated
    fixed = cfg.model_copy(update={"steps": steps, "n_random": 0, "checkpoint_every": steps, "eval_every": eval_every})
    result = train_supernet(
        net, teacher, SubSpace.single(arch), data, fixed, relation_heads, out_dir, device, progress=False
    )
    return net.eval(), result


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
