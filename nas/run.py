"""What every recipe of a run needs, resolved once from its config, cheapest checks first:
the run directory, the teacher's config, the search space, the relation heads. Nothing here
loads model weights; `load_models` and `load_data` do, after the checks have passed."""

from __future__ import annotations

import copy
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig

from nas.config import RunConfig, dump_config
from search_spaces import ArchSet, SearchSpace, SubSpace, SupernetShape, costs
from supernet import teachers
from supernet.checkpoint import Checkpoint, latest_state, load_latest
from supernet.config import TrainConfig
from supernet.data import TokenizedData, prepare_data
from supernet.hf_models import build_model
from supernet.importance import LayerImportance, measure_importance, reorder_by_importance
from supernet.losses import check_relation_heads, default_relation_heads
from supernet.registry import build_supernet, supernet_class
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher, cache_key

log = logging.getLogger(__name__)


@dataclass
class Run:
    config: RunConfig
    run_dir: Path
    teacher_config: PretrainedConfig
    space: SearchSpace
    relation_heads: int

    def supernet_dir(self, subspace: str) -> Path:
        return self.run_dir / "supernets" / subspace

    def subspaces(self, names: list[str] | None = None) -> list[SubSpace]:
        """The sub-spaces a recipe works on: those named (`--subspace`), or all of them."""
        return [self.space[name] for name in names] if names else list(self.space.subspaces)

    def device(self, override: str | None = None) -> torch.device:
        name = override or self.config.train.device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"train.device: got {name!r}, but no CUDA device is available; use cpu")
        return torch.device(name)


def check_writable(run_dir: Path) -> None:
    """Fail before long work if the run directory cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as err:
        raise OSError(f"run_dir: cannot write to {str(run_dir)!r} ({err.strerror or err})") from None


def resolve_space(config: RunConfig, teacher_config: PretrainedConfig) -> SearchSpace:
    sc = config.space
    if sc.builtin:
        space = SearchSpace.builtin(sc.builtin)
    elif sc.file:
        space = SearchSpace.load(sc.file)
    else:
        return SearchSpace.from_teacher(teacher_config.to_dict(), partitions=sc.partitions,
                                        layer_policy=sc.layer_policy, name=f"derived:{config.teacher.id}",
                                        partition_by=sc.partition_by)
    teacher_arch = teachers.teacher_arch(teacher_config)
    if space.teacher != teacher_arch:
        raise ValueError(f"space: {space.name!r} is for teacher {space.teacher.id}, not {teacher_arch.id}")
    return space


def relation_heads(config: RunConfig, space: SearchSpace) -> int:
    widths = {w for a in (*space.archs(), space.teacher) for w in (a.attention_width, a.kv_width)}
    requested = config.train.loss.relation.heads
    if requested is None:
        return default_relation_heads(widths, space.teacher.num_heads)
    check_relation_heads(requested, widths)
    return requested


def check_budgets(config: RunConfig, space: SearchSpace) -> None:
    """Every params/FLOPs budget must admit at least one architecture of the space."""
    search = config.search
    for key, bound in sorted(search.budgets.items()):
        if key == "latency_ms":
            continue  # known only after measuring or fitting a predictor
        smallest = min(costs(a, search.batch_size, search.seq_len)[key] for a in space.archs())
        if smallest > bound:
            raise ValueError(f"search.budgets.{key}: got {bound:g}; no architecture of the space meets it: the "
                             f"smallest achievable is {smallest:g} (at batch {search.batch_size} x {search.seq_len})")


def open_run(config: RunConfig, save_config: bool = True) -> Run:
    """Validate everything that can be known without weights, writing nothing until it has
    passed; then write the run's config."""
    run_dir = Path(config.run_dir)
    tc = teachers.load_config(config.teacher.id, config.teacher.revision, config.teacher.trust_remote_code)
    space = resolve_space(config, tc)
    heads = relation_heads(config, space)
    if config.train.loss.lm_weight > 0 and space.teacher.family != "decoder":
        raise ValueError(f"train.loss.lm_weight: got {config.train.loss.lm_weight:g}; a next-token loss needs a "
                         "decoder teacher (this one is an encoder); use 0")
    check_budgets(config, space)
    check_writable(run_dir)
    if save_config:
        tmp = run_dir / f".config.yaml.tmp{os.getpid()}"
        tmp.write_text(dump_config(config))
        os.replace(tmp, run_dir / "config.yaml")
    return Run(config, run_dir, tc, space, heads)


def load_data(run: Run) -> TokenizedData:
    tc = run.config.teacher
    tokenizer = teachers.load_tokenizer(tc.id, tc.revision, tc.trust_remote_code)
    return prepare_data(run.config.data, tokenizer, run.run_dir / "cache")


def load_teacher_net(run: Run, device: torch.device) -> SuperLM:
    """The frozen teacher as a full-shape SuperLM (so its Q/K/V at any layer are at hand)."""
    tc = run.config.teacher
    model = teachers.load_teacher(tc.id, tc.revision, tc.trust_remote_code)
    net = build_supernet(model, run.space.layer_policy).to(device).eval()
    net.requires_grad_(False)
    return net


def training_teacher(run: Run, teacher: SuperLM, data: TokenizedData) -> SuperLM | CachedTeacher:
    """What training distils from: the teacher itself, or, with `train.teacher_top_k`, the teacher
    behind its on-disk logit cache (shared by every recipe of the run: train, distill, schedule)."""
    k = run.config.train.teacher_top_k
    if k is None:
        return teacher
    key = cache_key(run.config.teacher.id, teacher.full_arch, data, k)
    return CachedTeacher(teacher, data, run.run_dir / "teacher-cache" / key, k)


def trained_shape(run: Run, name: str) -> SupernetShape | None:
    """The shape of the supernet trained in `supernets/<name>`, as its checkpoints record it (runs
    written before supernets were hulls held the whole teacher), or None when untrained."""
    state = latest_state(run.supernet_dir(name))
    return None if state is None else _recorded_shape(state, run)


def _recorded_shape(state: dict, run: Run) -> SupernetShape:
    """The shape a checkpoint's state records; a checkpoint from before hulls held the whole teacher."""
    recorded = state.get("supernet", {}).get("shape")
    return SupernetShape.from_dict(recorded) if recorded else SupernetShape.whole(run.space.teacher)


def supernet_shape(run: Run, members: ArchSet) -> SupernetShape:
    """What the supernet of `members` holds: what it was trained as if it was (so a run resumes
    and loads as it was written), else the hull of the members."""
    return trained_shape(run, members.name) or members.supernet_shape


def load_trained_supernet(run: Run, subspace: str, device: torch.device,
                          members: ArchSet | None = None) -> tuple[SuperLM, Checkpoint]:
    """The supernet of `members` (default: the run's sub-space of that name) from its newest
    checkpoint. No teacher weights are read: the checkpoint holds every tensor of the supernet's
    shape, so the shell is built from the config."""
    members = members or run.space[subspace]
    ckpt = load_latest(run.supernet_dir(subspace), with_optimizer=False)
    if ckpt is None:
        raise FileNotFoundError(f"no trained supernet for sub-space {subspace!r} in {run.run_dir}; "
                                f"run `nas train {run.run_dir / 'config.yaml'}` first")
    shape = _recorded_shape(ckpt.state, run)
    policy = run.space.layer_policy
    for arch in members.archs():  # a sub-space changed since training (e.g. another partition scheme)
        why = shape.holds(arch, policy)
        if why is not None:
            raise ValueError(f"sub-space {subspace!r}: the supernet in {run.supernet_dir(subspace)} does not hold "
                             f"member {arch.id} ({why}); the sub-space changed since it was trained: train it "
                             f"again in a new run_dir")
    shell = build_model(shape.arch, run.teacher_config)
    supernet = supernet_class(run.teacher_config.model_type)(shell, policy, shape)
    with torch.no_grad():
        for name, w in supernet.weights().items():
            w.copy_(ckpt.weights[name])
    return supernet.to(device).eval(), ckpt


def teacher_importance(teacher: SuperLM, data: TokenizedData, cfg: TrainConfig,
                       device: torch.device) -> list[LayerImportance]:
    """Head and neuron importance of the teacher on the first training batches."""
    batches = [
        {k: v.to(device) for k, v in data.train_batch(0, m, 1, cfg.batch_size, cfg.seed).items()}
        for m in range(cfg.eval_batches)
    ]
    return measure_importance(teacher, batches)


def reorders_heads(config: RunConfig) -> bool:
    """Whether importance reordering may permute attention heads: only where nothing compares
    attention relations (no relation loss in training, no relation_kd objective in the search).
    Relation heads split the heads' queries, keys and values in head order, so a permuted student
    would start far from the teacher's relations while computing exactly what the teacher does."""
    relations_trained = config.train.loss.kind == "distill" and config.train.loss.relation.weight > 0
    return not relations_trained and "relation_kd" not in {o.name for o in config.search.objectives}


def fresh_supernet(teacher: SuperLM, importance: list[LayerImportance] | None, shape: SupernetShape,
                   heads: bool = True) -> SuperLM:
    """A trainable supernet holding `shape` (a sub-space's hull), initialised from the teacher's
    weights, reordered by importance first when asked (so the hull keeps the most important FFN
    neurons, and heads when `heads`)."""
    supernet = teacher
    if importance is not None:
        supernet = copy.deepcopy(teacher)  # deepcopy keeps the weight map on the copy's own tensors
        reorder_by_importance(supernet, importance, heads=heads)
    return supernet.hull(shape).requires_grad_(True).train()


@dataclass
class TrainingSetup:
    """What training any supernet of a run starts from, loaded once per process: the data, the
    frozen teacher, and its head / neuron importance when the supernets are reordered by it."""

    run: Run
    data: TokenizedData
    teacher: SuperLM
    importance: list[LayerImportance] | None

    def supernet(self, members: ArchSet) -> SuperLM:
        """A fresh (or resumable) supernet of `members`, cut from the (reordered) teacher."""
        return fresh_supernet(self.teacher, self.importance, supernet_shape(self.run, members),
                              heads=reorders_heads(self.run.config))

    def source(self) -> SuperLM | CachedTeacher | None:
        """What distils into it: the teacher (or its logit cache); None when teacher-free."""
        if self.run.config.train.loss.kind == "lm":
            return None
        return training_teacher(self.run, self.teacher, self.data)


def training_setup(run: Run, device: torch.device, reorder: bool | None = None) -> TrainingSetup:
    """Load the data and the teacher and measure importance (`reorder`, default the config's
    `train.reorder_importance`): the one set-up of `nas train`, Ray Train workers and `nas schedule`."""
    data = load_data(run)
    teacher = load_teacher_net(run, device)
    cfg = run.config.train
    reorder = cfg.reorder_importance if reorder is None else reorder
    return TrainingSetup(run, data, teacher, teacher_importance(teacher, data, cfg, device) if reorder else None)
