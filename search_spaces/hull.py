"""The hull of a set of architectures: the smallest supernet that holds every one of them.

A sub-space's SuperLM need not carry the whole teacher: it holds the teacher layers that some
member keeps under the layer policy, and per dimension the largest hidden size, head count, KV
heads, head dim and FFN width of any member. Every member is then a leading slice of the hull
(weight sharing is leading slices), so training, search and export work on it unchanged, while
weights, gradients and optimizer state shrink to what the sub-space can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from search_spaces.arch import Arch, InvalidArchError
from search_spaces.layers import LayerPolicy, layer_indices

_WIDTHS = ("hidden_size", "num_heads", "num_kv_heads", "head_dim", "intermediate_size")


@dataclass(frozen=True)
class SupernetShape:
    """What a supernet holds: tensors of `arch`'s shape, whose layer j is teacher layer
    `layers[j]`; the layer policy maps a member's depth onto `teacher_layers` layers."""

    arch: Arch
    layers: tuple[int, ...]
    teacher_layers: int

    def __post_init__(self) -> None:
        if len(self.layers) != self.arch.num_layers:
            raise ValueError(f"SupernetShape.layers: {len(self.layers)} layers for an arch of {self.arch.num_layers}")
        if list(self.layers) != sorted(set(self.layers)) or not all(0 <= i < self.teacher_layers for i in self.layers):
            raise ValueError(f"SupernetShape.layers: got {list(self.layers)}; must be increasing teacher layer "
                             f"indices in 0..{self.teacher_layers - 1}")

    @classmethod
    def whole(cls, teacher: Arch) -> SupernetShape:
        """The whole teacher (every layer, every width)."""
        return cls(teacher, tuple(range(teacher.num_layers)), teacher.num_layers)

    def holds(self, arch: Arch, policy: LayerPolicy) -> str | None:
        """None when `arch` is a leading slice of this shape under `policy`, else why not."""
        if arch.num_layers > self.teacher_layers:
            return f"arch.num_layers: got {arch.num_layers}; the supernet allows at most {self.teacher_layers}"
        for dim in _WIDTHS:
            if getattr(arch, dim) > getattr(self.arch, dim):
                return f"arch.{dim}: got {getattr(arch, dim)}; the supernet allows at most {getattr(self.arch, dim)}"
        missing = sorted(set(layer_indices(policy, arch.num_layers, self.teacher_layers)) - set(self.layers))
        if missing:
            return (f"arch.num_layers: got {arch.num_layers}, which runs teacher layers {missing} under the "
                    f"{policy!r} policy; the supernet holds layers {list(self.layers)}")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict(), "layers": list(self.layers), "teacher_layers": self.teacher_layers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupernetShape:
        return cls(Arch.from_dict(data["arch"]), tuple(data["layers"]), int(data["teacher_layers"]))


def hull(members: Iterable[Arch], teacher: Arch, policy: LayerPolicy) -> SupernetShape:
    """The smallest shape holding every member of `members` as a slice of `teacher`."""
    archs = list(members)
    if not archs:
        raise ValueError("hull: needs at least one architecture")
    layers = tuple(sorted({i for a in archs for i in layer_indices(policy, a.num_layers, teacher.num_layers)}))
    widths = {dim: max(getattr(a, dim) for a in archs) for dim in _WIDTHS}
    try:
        arch = teacher.replace(num_layers=len(layers), **widths)
    except InvalidArchError:
        # The per-dimension maxima break a family rule (possible only in hand-written spaces,
        # e.g. an encoder whose widest member is not the one with most heads): keep the
        # teacher's widths and shrink depth alone.
        arch = teacher.replace(num_layers=len(layers))
    return SupernetShape(arch, layers, teacher.num_layers)
