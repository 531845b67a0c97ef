"""Search spaces: boxes of per-dimension choices, filtered by the family's HF rules.

A `SubSpace` is one compact box (AutoDistil's "tiny", "small", "base"): for every dimension a
list of allowed integers; its members are the product of those lists filtered by `Arch`'s rules
and by the teacher's maxima (a sub-network is a slice of the teacher-initialised supernet).
A `SearchSpace` is a teacher plus K named sub-spaces, one supernet each.

Spaces are data: they load from and save to YAML, and enumerate deterministically.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import yaml

from search_spaces.arch import Arch, InvalidArchError
from search_spaces.cost import flops, params
from search_spaces.hull import SupernetShape, hull
from search_spaces.layers import LAYER_POLICIES, LayerPolicy

BUILTIN_DIR = Path(__file__).parent / "builtin"
PARTITION_NAMES = {1: ["full"], 2: ["small", "base"], 3: ["tiny", "small", "base"]}
COST_BAND_KEY = "non_embedding_params"  # a sub-space's cost band, in YAML
PartitionBy = Literal["cost", "box"]
PARTITION_SCHEMES: tuple[PartitionBy, ...] = ("cost", "box")


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class InvalidSpaceError(ValueError):
    """A space definition breaks a rule; the message names the field, the value and the rule."""


@dataclass(frozen=True)
class Choices:
    """Allowed values per dimension. The FFN size is given either absolutely
    (`intermediate_size`) or as exact ratios of the hidden size (`mlp_ratio`, AutoDistil's way),
    never both; a ratio must give an integer for every hidden size."""

    num_layers: tuple[int, ...]
    hidden_size: tuple[int, ...]
    num_heads: tuple[int, ...]
    head_dim: tuple[int, ...]
    num_kv_heads: tuple[int, ...] = ()  # decoders; encoders have num_kv_heads == num_heads
    intermediate_size: tuple[int, ...] = ()
    mlp_ratio: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, list[Any]]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Choices:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSpaceError(f"{where}: unknown dimension(s) {unknown}; allowed: {sorted(known)}")
        values: dict[str, tuple[Any, ...]] = {}
        for name, raw in data.items():
            items = raw if isinstance(raw, (list, tuple)) else [raw]
            values[name] = tuple(
                sorted(set(float(v) if name == "mlp_ratio" else _int(v, f"{where}.{name}") for v in items))
            )
        return cls(**values)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpaceError(f"{where}: got {value!r}; must be an integer")
    return value


class ArchSet:
    """Membership, size, seeded uniform sampling, the sandwich set and the supernet's shape over
    `archs()`, the members of a set of slices of `teacher` under `layer_policy`."""

    name: str
    teacher: Arch
    layer_policy: LayerPolicy

    def archs(self) -> tuple[Arch, ...]:
        raise NotImplementedError

    @functools.cached_property
    def supernet_shape(self) -> SupernetShape:
        """What the SuperLM of this set holds: the hull of its members."""
        return hull(self.archs(), self.teacher, self.layer_policy)

    @functools.cached_property
    def _members(self) -> frozenset[Arch]:
        return frozenset(self.archs())

    @property
    def size(self) -> int:
        return len(self.archs())

    def __contains__(self, arch: object) -> bool:
        return arch in self._members

    def __iter__(self) -> Iterator[Arch]:
        return iter(self.archs())

    def sample(self, rng: np.random.Generator | int, n: int = 1) -> list[Arch]:
        """`n` architectures drawn uniformly (with replacement) from the members."""
        gen = np.random.default_rng(rng) if isinstance(rng, int) else rng
        members = self.archs()
        return [members[i] for i in gen.integers(0, len(members), size=n)]

    @property
    def largest(self) -> Arch:
        """The member with the most parameters (ties: the last in enumeration order)."""
        return max(reversed(self.archs()), key=lambda a: params(a).total)

    @property
    def smallest(self) -> Arch:
        return min(self.archs(), key=lambda a: params(a).total)

    def sandwich(self, rng: np.random.Generator | int, n_random: int) -> list[Arch]:
        """The sandwich rule's set for one training step: largest, smallest, then n random
        (a one-member set trains that member once per step)."""
        if self.size == 1:
            return [self.largest]
        return [self.largest, self.smallest, *self.sample(rng, n_random)]


@dataclass(frozen=True)
class ArchList(ArchSet):
    """An explicit, named set of architectures trained as one supernet (the TA candidates)."""

    name: str
    teacher: Arch
    members: tuple[Arch, ...]
    layer_policy: LayerPolicy = "uniform"

    def __post_init__(self) -> None:
        if not self.members:
            raise InvalidSpaceError(f"{self.name}: needs at least one architecture")

    def archs(self) -> tuple[Arch, ...]:
        return self.members


@dataclass(frozen=True)
class SubSpace(ArchSet):
    name: str
    teacher: Arch
    choices: Choices
    layer_policy: LayerPolicy = "uniform"
    # Inclusive (low, high) bounds on non-embedding parameters, or None: a cost band keeps the
    # box's members of that cost only (see `SearchSpace.partition`).
    cost_band: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        where, t, c = f"space.subspaces[{self.name}]", self.teacher, self.choices
        # The name becomes a directory and a study name: no path separators, no "..", no hidden names.
        if not SAFE_NAME.fullmatch(self.name):
            raise InvalidSpaceError(
                f"space.subspaces.name: got {self.name!r}; allowed: letters, digits, '_', '-' "
                f"and '.', starting with a letter or digit"
            )
        if self.layer_policy not in LAYER_POLICIES:
            raise InvalidSpaceError(f"space.layer_policy: got {self.layer_policy!r}; allowed: {list(LAYER_POLICIES)}")
        bounds = {
            "num_layers": t.num_layers,
            "hidden_size": t.hidden_size,
            "num_heads": t.num_heads,
            "head_dim": t.head_dim,
            "num_kv_heads": t.num_kv_heads,
            "intermediate_size": t.intermediate_size,
        }
        for dim, bound in bounds.items():
            values = getattr(c, dim)
            if dim == "num_kv_heads" and t.family == "encoder":
                if values:
                    raise InvalidSpaceError(f"{where}.num_kv_heads: encoders have no KV-head choice")
                continue
            if dim == "intermediate_size" and c.mlp_ratio:
                if values:
                    raise InvalidSpaceError(f"{where}: give intermediate_size or mlp_ratio, not both")
                continue
            if not values:
                raise InvalidSpaceError(f"{where}.{dim}: needs at least one value")
            for v in values:
                if not 1 <= v <= bound:
                    raise InvalidSpaceError(f"{where}.{dim}: got {v}; allowed 1..{bound} (the teacher's {dim})")
        for r in c.mlp_ratio:
            for h in c.hidden_size:
                if (Fraction(str(r)) * h).denominator != 1:
                    raise InvalidSpaceError(
                        f"{where}.mlp_ratio: {r} x hidden_size {h} is not an integer; use ratios "
                        f"that give whole FFN sizes, or intermediate_size"
                    )
        if self.cost_band is not None:
            low, high = self.cost_band
            if not 0 <= low <= high:
                raise InvalidSpaceError(
                    f"{where}.{COST_BAND_KEY}: got {list(self.cost_band)}; must be [low, high] with 0 <= low <= high"
                )
        if not self.archs():
            raise InvalidSpaceError(
                f"{where}: no architecture satisfies the {t.family} rules, the teacher's maxima"
                + (f" and {COST_BAND_KEY} {list(self.cost_band)}" if self.cost_band else "")
            )

    @classmethod
    def single(cls, arch: Arch, name: str = "fixed") -> SubSpace:
        """The one-member sub-space of `arch`, which is also its own maximum (fixed-shape training)."""
        choices = Choices(
            num_layers=(arch.num_layers,),
            hidden_size=(arch.hidden_size,),
            num_heads=(arch.num_heads,),
            head_dim=(arch.head_dim,),
            intermediate_size=(arch.intermediate_size,),
            num_kv_heads=(arch.num_kv_heads,) if arch.family == "decoder" else (),
        )
        return cls(name, arch, choices, "first")

    def _ffn_sizes(self, hidden: int) -> tuple[int, ...]:
        if self.choices.mlp_ratio:
            return tuple(int(Fraction(str(r)) * hidden) for r in self.choices.mlp_ratio)
        return self.choices.intermediate_size

    def archs(self) -> tuple[Arch, ...]:
        return _enumerate(self)

    def to_dict(self) -> dict[str, Any]:
        band = {COST_BAND_KEY: list(self.cost_band)} if self.cost_band else {}
        return {"name": self.name, **self.choices.to_dict(), **band}


@functools.lru_cache(maxsize=64)
def _enumerate(sub: SubSpace) -> tuple[Arch, ...]:
    """All members in a fixed order (dimension by dimension, ascending). Cached per sub-space."""
    t, c = sub.teacher, sub.choices
    kv_choices: tuple[int | None, ...] = c.num_kv_heads if t.family == "decoder" else (None,)
    fixed = dict(
        family=t.family,
        vocab_size=t.vocab_size,
        max_position=t.max_position,
        type_vocab_size=t.type_vocab_size,
        tie_embeddings=t.tie_embeddings,
    )
    out: list[Arch] = []
    for layers, hidden, heads, head_dim, kv in itertools.product(
        c.num_layers, c.hidden_size, c.num_heads, c.head_dim, kv_choices
    ):
        for ffn in sub._ffn_sizes(hidden):
            if ffn > t.intermediate_size:
                continue
            try:
                arch = Arch(
                    num_layers=layers,
                    hidden_size=hidden,
                    num_heads=heads,
                    num_kv_heads=heads if kv is None else kv,
                    head_dim=head_dim,
                    intermediate_size=ffn,
                    **fixed,  # type: ignore[arg-type]  # fixed holds typed fields
                )
            except InvalidArchError:
                continue  # filtered by the family's HF rules
            if sub.cost_band and not sub.cost_band[0] <= params(arch).non_embedding <= sub.cost_band[1]:
                continue
            out.append(arch)
    return tuple(out)


@dataclass(frozen=True)
class SearchSpace(ArchSet):
    """A teacher and its K named sub-spaces (one supernet each)."""

    name: str
    teacher: Arch
    subspaces: tuple[SubSpace, ...]
    layer_policy: LayerPolicy = "uniform"
    _by_name: dict[str, SubSpace] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.subspaces]
        if not names:
            raise InvalidSpaceError(f"space {self.name}: needs at least one sub-space")
        if len(set(names)) != len(names):
            raise InvalidSpaceError(f"space {self.name}: sub-space names repeat: {names}")
        object.__setattr__(self, "_by_name", {s.name: s for s in self.subspaces})

    def __getitem__(self, name: str) -> SubSpace:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidSpaceError(f"sub-space: got {name!r}; this space has {list(self._by_name)}") from None

    def archs(self) -> tuple[Arch, ...]:
        # Union in sub-space order; an arch in two boxes counts once.
        return tuple(dict.fromkeys(a for s in self.subspaces for a in s.archs()))

    def band_holding(self, budget: float, cost: Callable[[Arch], float]) -> SubSpace:
        """The sub-space a student of this budget comes from: the one holding the most members
        whose cost lies within 10% below the budget (the shapes a user of that budget compares);
        with none there, the one holding the costliest member under the budget."""
        under = [a for a in self.archs() if cost(a) <= budget]
        if not under:
            raise InvalidSpaceError(f"budget: got {budget:g}; no member of space {self.name} costs that little")
        near = [a for a in under if cost(a) >= 0.9 * budget]
        if not near:
            costliest = max(under, key=cost)
            return next(s for s in self.subspaces if costliest in s)
        return max(self.subspaces, key=lambda s: sum(a in s for a in near))

    def hull(self) -> Choices:
        """Per dimension, the union of every sub-space's choices."""
        merged: dict[str, tuple[Any, ...]] = {}
        for f in fields(Choices):
            merged[f.name] = tuple(sorted({v for s in self.subspaces for v in getattr(s.choices, f.name)}))
        if merged["mlp_ratio"] and merged["intermediate_size"]:
            # Mixed boxes: express every FFN size absolutely.
            sizes = {a.intermediate_size for a in self.archs()}
            merged["mlp_ratio"], merged["intermediate_size"] = (), tuple(sorted(sizes))
        return Choices(**merged)

    def summary(self, batch: int, seq_len: int) -> dict[str, Any]:
        """Per sub-space: size, choices, params and FLOPs ranges (at batch x seq_len), cost band and
        supernet size; and how many members of the union box the sub-spaces hold."""
        rows = []
        for sub in self.subspaces:
            archs = sub.archs()
            p = [params(a).total for a in archs]
            f = [flops(a, batch, seq_len) for a in archs]
            rows.append(
                {
                    "name": sub.name,
                    "size": sub.size,
                    "choices": sub.choices.to_dict(),
                    "params_min": min(p),
                    "params_max": max(p),
                    "flops_min": min(f),
                    "flops_max": max(f),
                    "cost_band": list(sub.cost_band) if sub.cost_band else None,
                    "supernet_params": params(sub.supernet_shape.arch).total,
                    "supernet_layers": list(sub.supernet_shape.layers),
                }
            )
        whole = self.partition(1).size  # the union box: what the sub-spaces could have held
        return {
            "space": self.name,
            "teacher": self.teacher.to_dict(),
            "layer_policy": self.layer_policy,
            "batch": batch,
            "seq_len": seq_len,
            "members": self.size,
            "box_members": whole,
            "subspaces": rows,
        }

    def partition(self, k: int, by: PartitionBy = "cost") -> SearchSpace:
        """Split the space (the union box of its sub-spaces) into `k` sub-spaces of increasing scale.

        `cost` (default): K bands of cost that tile the space. Members are ordered by
        non-embedding parameters (the per-token matmul work, so FLOPs at short sequences) and cut
        into K runs of near-equal size, never splitting one cost between two bands; each band
        holds every shape of its cost (shallow-and-wide and deep-and-narrow alike), and the
        bands' sizes add up to the space's.

        `box`: AutoDistil's coupled boxes. The layer and hidden-size choices are each cut into K
        contiguous runs and box i takes run i of both, so depth and width grow together. It
        leaves out every member whose depth and width fall in different runs (shallow-and-wide,
        deep-and-narrow): the boxes do not tile the space.

        The names are tiny/small/base for k=3, small/base for 2, part0.. otherwise.
        """
        if by not in PARTITION_SCHEMES:
            raise InvalidSpaceError(f"space.partition_by: got {by!r}; allowed: {list(PARTITION_SCHEMES)}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidSpaceError(f"space.partitions: got {k!r}; must be an integer >= 1")
        hull = self.hull()
        names = PARTITION_NAMES.get(k, [f"part{i}" for i in range(k)])
        if by == "cost":
            subs = self._cost_bands(hull, k, names)
        else:
            subs = self._boxes(hull, k, names)
        return SearchSpace(self.name, self.teacher, tuple(subs), self.layer_policy)

    def _cost_bands(self, hull: Choices, k: int, names: list[str]) -> list[SubSpace]:
        whole = SubSpace("whole", self.teacher, hull, self.layer_policy)
        costs = sorted(params(a).non_embedding for a in whole.archs())
        distinct = sorted(set(costs))
        if k > len(distinct):
            raise InvalidSpaceError(
                f"space.partitions: got {k}; this space allows at most {len(distinct)} "
                f"cost bands ({len(distinct)} distinct costs)"
            )
        # Band i starts at the cost of member round(i*N/K) in cost order; a cost shared by several
        # members stays in one band, so a boundary moves to the next distinct cost when it must.
        starts = [distinct[0]]
        for i in range(1, k):
            start = costs[round(i * len(costs) / k)]
            later = [c for c in distinct if c > starts[-1]]
            starts.append(max(start, later[0]) if later else start)
        if len(set(starts)) < k:
            raise InvalidSpaceError(
                f"space.partitions: got {k}; too many members share a cost to cut {k} non-empty bands"
            )
        bounds = [(low, distinct[distinct.index(high) - 1]) for low, high in zip(starts, starts[1:])]
        bounds.append((starts[-1], distinct[-1]))
        return [SubSpace(name, self.teacher, hull, self.layer_policy, band) for name, band in zip(names, bounds)]

    def _boxes(self, hull: Choices, k: int, names: list[str]) -> list[SubSpace]:
        most = min(len(hull.num_layers), len(hull.hidden_size))
        if k > most:
            raise InvalidSpaceError(
                f"space.partitions: got {k}; this space allows at most {most} "
                f"({len(hull.num_layers)} layer choices, {len(hull.hidden_size)} hidden sizes)"
            )
        layer_runs = np.array_split(np.array(hull.num_layers), k)
        hidden_runs = np.array_split(np.array(hull.hidden_size), k)
        subs = []
        for name, layers, hidden in zip(names, layer_runs, hidden_runs):
            choices = Choices(
                **{
                    **{f.name: getattr(hull, f.name) for f in fields(Choices)},
                    "num_layers": tuple(int(x) for x in layers),
                    "hidden_size": tuple(int(x) for x in hidden),
                }
            )
            subs.append(SubSpace(name, self.teacher, choices, self.layer_policy))
        return subs

    @classmethod
    def from_teacher(
        cls,
        hf_config: dict[str, Any],
        partitions: int = 3,
        layer_policy: LayerPolicy = "uniform",
        name: str | None = None,
        partition_by: PartitionBy = "cost",
    ) -> SearchSpace:
        """The space derived from a teacher's HF config (its dimensions are the maxima).

        Steps: layers from max(2, L/4) to L (step L/12, at least 1); encoder hidden sizes are
        multiples of the teacher's head_dim (heads from H/4 to H), decoder hidden sizes step by
        hidden/8 rounded to a multiple of 32 down to hidden/3; query heads from H/4 to H and, for
        decoders, every KV-head count up to the teacher's; FFN sizes step by F/8 rounded to a
        multiple of 32 down to F/4. head_dim stays the teacher's (kept whole per head).
        """
        from search_spaces.hf_names import arch_from_hf_config

        teacher = arch_from_hf_config(hf_config)
        choices = _teacher_choices(teacher)
        full = SubSpace("full", teacher, choices, layer_policy)
        space = cls(name or f"derived-{teacher.id}", teacher, (full,), layer_policy)
        return space.partition(partitions, partition_by)

    @classmethod
    def builtin(cls, name: str) -> SearchSpace:
        path = BUILTIN_DIR / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
            raise InvalidSpaceError(f"space: no built-in space {name!r}; built-in: {known}")
        return cls.load(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "teacher": self.teacher.to_dict(),
            "layer_policy": self.layer_policy,
            "subspaces": [s.to_dict() for s in self.subspaces],
        }

    @classmethod
    def from_dict(cls, data: Any) -> SearchSpace:
        if not isinstance(data, dict):
            raise InvalidSpaceError(f"space: must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {"name", "teacher", "layer_policy", "subspaces"})
        if unknown:
            raise InvalidSpaceError(f"space: unknown key(s) {unknown}; allowed: name, teacher, layer_policy, subspaces")
        for key in ("name", "teacher", "subspaces"):
            if key not in data:
                raise InvalidSpaceError(f"space.{key}: missing")
        teacher = Arch.from_dict(data["teacher"])
        policy = data.get("layer_policy", "uniform")
        subs = []
        for i, raw in enumerate(data["subspaces"]):
            raw = dict(raw)
            name = str(raw.pop("name", f"part{i}"))
            band = _cost_band(raw.pop(COST_BAND_KEY, None), f"space.subspaces[{name}].{COST_BAND_KEY}")
            subs.append(SubSpace(name, teacher, Choices.from_dict(raw, f"space.subspaces[{name}]"), policy, band))
        return cls(str(data["name"]), teacher, tuple(subs), policy)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as err:
            raise InvalidSpaceError(f"space file {path}: not valid YAML ({err})") from err
        return cls.from_dict(data)


def _cost_band(raw: Any, where: str) -> tuple[int, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise InvalidSpaceError(f"{where}: got {raw!r}; must be [low, high]")
    return _int(raw[0], where), _int(raw[1], where)


def _descending(top: int, step: int, floor: int) -> tuple[int, ...]:
    values = range(top, max(floor, 1) - 1, -max(step, 1))
    return tuple(sorted(v for v in values if v >= 1))


def _round32(x: float) -> int:
    return max(32, int(round(x / 32)) * 32)


def _teacher_choices(t: Arch) -> Choices:
    layers = _descending(t.num_layers, max(1, t.num_layers // 12), min(t.num_layers, max(2, t.num_layers // 4)))
    heads = _descending(t.num_heads, 1, max(1, t.num_heads // 4))
    ffn = _descending(t.intermediate_size, _round32(t.intermediate_size / 8), t.intermediate_size // 4)
    if t.family == "encoder":
        hidden = tuple(h * t.head_dim for h in heads)
        return Choices(
            num_layers=layers, hidden_size=hidden, num_heads=heads, head_dim=(t.head_dim,), intermediate_size=ffn
        )
    hidden = _descending(t.hidden_size, _round32(t.hidden_size / 8), t.hidden_size // 3)
    return Choices(
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        head_dim=(t.head_dim,),
        num_kv_heads=tuple(range(1, t.num_kv_heads + 1)),
        intermediate_size=ffn,
    )
