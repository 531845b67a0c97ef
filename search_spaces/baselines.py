"""The students a user builds without a search, as members of a sub-space under a budget.

A search should never lose to what a user tries first, so it evaluates these first (warm starts,
`nas.search.trials.enqueue_warm_starts`) and can at worst return one of them:
- `layer_drop`: the sub-space's widest shape (its largest member's widths) at the greatest depth
  that meets the budget (the truncated teacher, as DistilBERT did);
- `uniform`: among the members within 10% below the budget, the one whose depth, width and FFN
  ratios to the teacher are most nearly equal (a uniform shrink);
- `largest`: the member with the most parameters that meets the budget.
Budgets are analytic costs by name (`COSTS`) at `batch` x `seq_len`; latency is not known here.
"""

from __future__ import annotations

import math

from search_spaces.arch import Arch
from search_spaces.cost import COSTS, costs
from search_spaces.space import SubSpace


def meets(arch: Arch, budgets: dict[str, float], batch: int, seq_len: int, slack: float = 1.0) -> bool:
    """Whether every analytic budget holds (cost <= slack x bound)."""
    c = costs(arch, batch, seq_len)
    return all(c[k] <= slack * bound for k, bound in budgets.items() if k in COSTS)


def uniformity(arch: Arch, teacher: Arch) -> float:
    """Spread of the log-ratios of depth, width and FFN to the teacher's (0 = a uniform shrink)."""
    ratios = [math.log(arch.num_layers / teacher.num_layers), math.log(arch.hidden_size / teacher.hidden_size),
              math.log(arch.intermediate_size / teacher.intermediate_size)]
    mean = sum(ratios) / 3
    return sum((r - mean) ** 2 for r in ratios)


def baselines_under(sub: SubSpace, budgets: dict[str, float], batch: int, seq_len: int) -> dict[str, Arch]:
    """Name -> member for each baseline that exists in `sub` under `budgets` (none without an
    analytic budget)."""
    analytic = {k: v for k, v in budgets.items() if k in COSTS}
    if not analytic:
        return {}
    feasible = [a for a in sub.archs() if meets(a, analytic, batch, seq_len)]
    if not feasible:
        return {}
    out: dict[str, Arch] = {}
    widest = sub.largest
    same_width = [a for a in feasible if a.replace(num_layers=widest.num_layers) == widest]
    if same_width:
        out["layer_drop"] = max(same_width, key=lambda a: a.num_layers)
    near = [a for a in feasible if not meets(a, analytic, batch, seq_len, slack=0.9)]
    if near:
        out["uniform"] = min(near, key=lambda a: (uniformity(a, sub.teacher), a.id))
    out["largest"] = max(feasible, key=lambda a: (costs(a, batch, seq_len)["params"], a.id))
    return out
