"""Which teacher layers a shallower sub-network keeps (the depth policy of weight sharing)."""

from __future__ import annotations

from typing import Literal

LayerPolicy = Literal["uniform", "autodistil", "first", "every_other"]
LAYER_POLICIES: tuple[LayerPolicy, ...] = ("uniform", "autodistil", "first", "every_other")


def layer_indices(policy: LayerPolicy, num_layers: int, max_layers: int) -> list[int]:
    """Indices (increasing, distinct) of the `max_layers` supernet layers that a sub-network of
    `num_layers` layers runs.

    - `uniform`: evenly spaced, keeping the first and the last layer: round(i*(L_max-1)/(L-1)).
    - `autodistil`: AutoDistil's floor(i * L_max / L) for i = 0..L-1 (keeps layer 0, not the last).
    - `first`: the first L layers (the truncated teacher).
    - `every_other`: layers 0, 2, 4, ...; past half the depth, the skipped layers 1, 3, ... are
      added back from the bottom (Jha et al.'s alternate-layer truncation).
    """
    if not 1 <= num_layers <= max_layers:
        raise ValueError(f"num_layers: got {num_layers}; allowed 1..{max_layers}")
    if policy == "first":
        return list(range(num_layers))
    if policy == "every_other":
        order = [*range(0, max_layers, 2), *range(1, max_layers, 2)]
        return sorted(order[:num_layers])
    if policy == "autodistil":
        return [i * max_layers // num_layers for i in range(num_layers)]
    if policy == "uniform":
        if num_layers == 1:
            return [max_layers - 1]
        # Exact integer rounding of i*(L_max-1)/(L-1), half up, so no float drift.
        span, steps = max_layers - 1, num_layers - 1
        return [(2 * i * span + steps) // (2 * steps) for i in range(num_layers)]
    raise ValueError(f"layer_policy: got {policy!r}; allowed: {list(LAYER_POLICIES)}")
