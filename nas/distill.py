"""`nas distill CONFIG`: continued task-agnostic distillation of one chosen architecture.

After a search has chosen a student, more distillation of that one fixed shape is the cheapest
way to a better student. The student starts from one of:
- an exported student directory (`--student DIR`: the supernet's weights for its architecture);
- the teacher's slice (`--arch JSON` with `--layers POLICY`): what a user gets without the engine,
  e.g. the first N layers at full width (DistilBERT's layer drop), or a uniform shrink; with
  `--importance-order`, the slice of the teacher after its FFN neurons (and, where no attention
  relations are compared, its heads) are reordered by importance, as the supernets are cut (so a
  slice keeps the most important ones).
It is distilled from the run's teacher with the run's loss and data for `--steps` steps at the
config's `student.lr` (default `train.lr`), resumable (checkpoints under `OUT/distill-checkpoints`;
`OUT/distill-request.json` says which architecture, starting point and rate they belong to: a
different request is refused, or with `--force` started afresh), its training FLOPs counted as
`nas train` counts them, and written to OUT as a stock Hugging Face directory with a
`distilnas.json` that records where it came from, what it cost and the rate it trained at.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nas.config import RunConfig
from nas.export import ExportError, save_model
from nas.run import load_data, load_teacher_net, open_run, reorders_heads, teacher_importance, training_teacher
from search_spaces import LAYER_POLICIES, Arch, arch_from_hf_config
from supernet.hf_models import MODEL_CLASS
from supernet.importance import reorder_by_importance
from supernet.registry import supernet_class
from supernet.train import train_fixed

log = logging.getLogger(__name__)

CHECKPOINTS = "distill-checkpoints"
REQUEST = "distill-request.json"


@dataclass
class DistillResult:
    out: str
    arch: dict[str, Any]
    source: str
    steps: int
    train_flops: float
    lr: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def distill(config: RunConfig, out: Path, steps: int, *, student: Path | None = None, arch: Arch | None = None,
            layers: str = "first", importance: bool = False, device: str | None = None,
            force: bool = False) -> DistillResult:
    """Distil one architecture for `steps` steps; see the module docstring."""
    if (student is None) == (arch is None):
        raise ValueError("distill: give exactly one of --student DIR or --arch JSON")
    if steps < 1:
        raise ValueError(f"--steps: got {steps}; must be >= 1")
    if layers not in LAYER_POLICIES:
        raise ValueError(f"--layers: got {layers!r}; allowed: {list(LAYER_POLICIES)}")
    if importance and student is not None:
        raise ValueError("--importance-order: reorders the teacher's slice; an exported --student is already cut")
    out = Path(out)
    foreign = out.exists() and any(p.name not in (CHECKPOINTS, REQUEST) for p in out.iterdir())
    if foreign and not (out / CHECKPOINTS).is_dir() and not force:
        raise ExportError(f"--out: {str(out)!r} is not empty and holds no distillation to resume; pass --force")
    run = open_run(config, save_config=False)
    if student is not None:
        if not (Path(student) / "config.json").is_file():
            raise FileNotFoundError(f"--student: {str(student)!r} is not a model directory (no config.json)")
        arch = arch_from_hf_config(json.loads((Path(student) / "config.json").read_text()))
    assert arch is not None
    teacher_arch = run.space.teacher
    for dim in ("vocab_size", "max_position", "type_vocab_size", "tie_embeddings", "family"):
        if getattr(arch, dim) != getattr(teacher_arch, dim):
            raise ValueError(
                f"arch.{dim}: got {getattr(arch, dim)!r}; the run's teacher has {getattr(teacher_arch, dim)!r}"
            )
    if student is not None:
        source = f"student:{Path(student).resolve()}"
    else:
        source = f"teacher-slice:{layers}" + ("+importance" if importance else "")
    train = config.distill_train  # `train` at the student's own rate
    # The rate is part of the request: checkpoints trained at another rate are not resumed as if
    # they were this one's.
    request = {"arch": arch.id, "source": source, "lr": train.lr}
    if (out / CHECKPOINTS).is_dir():
        before = json.loads((out / REQUEST).read_text()) if (out / REQUEST).is_file() else None
        if before != request:
            if not force:
                raise ExportError(f"--out: {str(out)!r} holds the distillation of {before}, not of {request}; "
                                  "pass --force to start afresh")
            log.warning("%s: discarding the checkpoints of %s (this is %s)", out, before, request)
            shutil.rmtree(out / CHECKPOINTS)
    out.mkdir(parents=True, exist_ok=True)
    (out / REQUEST).write_text(json.dumps(request))
    dev = run.device(device)
    data = load_data(run)
    teacher = load_teacher_net(run, dev)
    if student is not None:
        model = MODEL_CLASS[arch.family].from_pretrained(student)
        init = supernet_class(run.teacher_config.model_type)(model, "first").to(dev)
    else:
        # The teacher's own weights under the chosen layer policy: a slice, no supernet involved.
        init = supernet_class(run.teacher_config.model_type)(teacher.body, layers).to(dev)  # type: ignore[arg-type]
        if importance:  # on a copy: the teacher itself still teaches, unpermuted
            init = copy.deepcopy(init)
            reorder_by_importance(init, teacher_importance(teacher, data, config.train, dev),
                                  heads=reorders_heads(config))
    # `train.loss.kind: lm` trains on next-token loss alone (the teacher-free baseline).
    teacher_source = None if config.train.loss.kind == "lm" else training_teacher(run, teacher, data)
    net, result = train_fixed(
        arch, init, teacher_source, data, train, run.relation_heads, out / CHECKPOINTS, dev, steps
    )
    del init, teacher
    save_model(net.extract(arch), config, out)
    record = DistillResult(str(out), arch.to_dict(), source, result.step, result.train_flops, train.lr)
    (out / "distilnas.json").write_text(json.dumps({**record.to_dict(), "teacher": config.teacher.id}, indent=2))
    log.info(
        "distilled %s (%s) for %d steps, %.3g training FLOPs -> %s",
        arch.id,
        source,
        result.step,
        result.train_flops,
        out,
    )
    return record
