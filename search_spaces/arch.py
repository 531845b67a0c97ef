"""`Arch`: one student architecture, as data.

An architecture is a frozen dataclass of integers (plus the family name and the decoder's
tied-embedding flag). It is the one value that says "which sub-network" everywhere: sampling,
the supernet's `set_active`, the cost model, extraction and export all take it.

Only shapes that the target Hugging Face config class can express are valid:
- encoder (BERT family, `BertModel`): attention width equals the hidden size, so
  `hidden_size % num_heads == 0` and `head_dim == hidden_size // num_heads`; there are no
  grouped KV heads (`num_kv_heads == num_heads`) and embeddings are never tied to a head.
- decoder (Llama family, `LlamaForCausalLM`): `head_dim` is free (attention width need not equal
  the hidden size), `num_heads % num_kv_heads == 0` (grouped-query attention), and, because
  transformers 5's `LlamaConfig` validates it, `hidden_size % num_heads == 0`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Family = Literal["encoder", "decoder"]
FAMILIES: tuple[Family, ...] = ("encoder", "decoder")


class InvalidArchError(ValueError):
    """An architecture breaks a rule of its family; the message names the field and the rule."""


@dataclass(frozen=True)
class Arch:
    """One student architecture. All sizes are absolute integers, never teacher fractions."""

    family: Family
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position: int
    type_vocab_size: int = 0  # BERT token-type embeddings; 0 for decoders
    tie_embeddings: bool = False  # decoder: LM head shares the input embedding

    def __post_init__(self) -> None:
        validate(self)

    @property
    def attention_width(self) -> int:
        """Width of the query projection output, num_heads * head_dim."""
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of each of the key and value projections, num_kv_heads * head_dim."""
        return self.num_kv_heads * self.head_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arch:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArchError(f"arch: unknown field(s) {unknown}; allowed: {sorted(known)}")
        missing = sorted(f.name for f in fields(cls) if f.name not in data and f.name in _REQUIRED)
        if missing:
            raise InvalidArchError(f"arch: missing field(s) {missing}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidArchError(f"arch: not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise InvalidArchError(f"arch: JSON must be an object, got {type(data).__name__}")
        return cls.from_dict(data)

    @functools.cached_property
    def id(self) -> str:
        """Stable short id: readable shape prefix plus a hash of the full JSON (computed once per
        object: a search compares the ids of every member of a space per trial)."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:8]
        return (
            f"{self.family[0]}L{self.num_layers}H{self.hidden_size}A{self.num_heads}"
            f"K{self.num_kv_heads}D{self.head_dim}F{self.intermediate_size}-{digest}"
        )

    def replace(self, **changes: Any) -> Arch:
        data = self.to_dict()
        data.update(changes)
        return Arch.from_dict(data)


_REQUIRED = {
    "family", "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
    "intermediate_size", "vocab_size", "max_position",
}
_POSITIVE = (
    "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
    "intermediate_size", "vocab_size", "max_position",
)


def validate(arch: Arch) -> None:
    """Check the field types and the family's HF rules. Raises InvalidArchError naming the rule."""
    if arch.family not in FAMILIES:
        raise InvalidArchError(f"arch.family: got {arch.family!r}; allowed: {list(FAMILIES)}")
    for name in _POSITIVE + ("type_vocab_size",):
        value = getattr(arch, name)
        # bool is an int subclass; a True where a size belongs is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArchError(f"arch.{name}: got {value!r}; must be an integer")
        if name in _POSITIVE and value <= 0:
            raise InvalidArchError(f"arch.{name}: got {value}; must be > 0")
        if value < 0:
            raise InvalidArchError(f"arch.{name}: got {value}; must be >= 0")
    if not isinstance(arch.tie_embeddings, bool):
        raise InvalidArchError(f"arch.tie_embeddings: got {arch.tie_embeddings!r}; must be a bool")

    if arch.family == "encoder":
        if arch.hidden_size % arch.num_heads != 0:
            raise InvalidArchError(
                f"arch: BERT rule hidden_size % num_heads == 0 broken "
                f"({arch.hidden_size} % {arch.num_heads} = {arch.hidden_size % arch.num_heads})"
            )
        if arch.head_dim != arch.hidden_size // arch.num_heads:
            raise InvalidArchError(
                f"arch.head_dim: BERT rule head_dim == hidden_size / num_heads broken "
                f"(got {arch.head_dim}, expected {arch.hidden_size // arch.num_heads})"
            )
        if arch.num_kv_heads != arch.num_heads:
            raise InvalidArchError(
                f"arch.num_kv_heads: BERT has no grouped KV heads; must equal num_heads "
                f"({arch.num_heads}), got {arch.num_kv_heads}"
            )
        if arch.tie_embeddings:
            raise InvalidArchError("arch.tie_embeddings: BertModel has no LM head; must be false")
    else:
        if arch.num_heads % arch.num_kv_heads != 0:
            raise InvalidArchError(
                f"arch: Llama rule num_heads % num_kv_heads == 0 broken "
                f"({arch.num_heads} % {arch.num_kv_heads} = {arch.num_heads % arch.num_kv_heads})"
            )
        if arch.hidden_size % arch.num_heads != 0:
            raise InvalidArchError(
                f"arch: Llama rule hidden_size % num_heads == 0 (LlamaConfig) broken "
                f"({arch.hidden_size} % {arch.num_heads} = {arch.hidden_size % arch.num_heads})"
            )
        if arch.type_vocab_size != 0:
            raise InvalidArchError(
                f"arch.type_vocab_size: Llama has no token types; must be 0, "
                f"got {arch.type_vocab_size}"
            )
