"""The one translation between Optuna trials and architectures.

A trial suggests each free dimension of its sub-space categorically (`suggest_arch`); a joint
teacher-assistant search also suggests the TA's sparsity. What a trial proposes is a `Candidate`:
the architecture, its sub-space, and the evaluator's other arguments.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import optuna

from search_spaces import Arch, SubSpace


def free_dims(sub: SubSpace) -> dict[str, tuple[Any, ...]]:
    """The dimensions a trial suggests. Encoders derive num_heads = hidden_size / head_dim and
    have no KV choice; FFN sizes are suggested as the sub-space states them (size or ratio)."""
    c = sub.choices
    dims: dict[str, tuple[Any, ...]] = {
        "num_layers": c.num_layers,
        "hidden_size": c.hidden_size,
        "head_dim": c.head_dim,
    }
    if sub.teacher.family == "decoder":
        dims.update(num_heads=c.num_heads, num_kv_heads=c.num_kv_heads)
    if c.mlp_ratio:
        dims["mlp_ratio"] = c.mlp_ratio
    else:
        dims["intermediate_size"] = c.intermediate_size
    return dims


def arch_params(arch: Arch, sub: SubSpace) -> dict[str, Any]:
    """The trial parameters that denote `arch` (the inverse of `suggest_arch` on members)."""
    out: dict[str, Any] = {}
    for dim in free_dims(sub):
        if dim == "mlp_ratio":
            out[dim] = next(
                r for r in sub.choices.mlp_ratio if Fraction(str(r)) * arch.hidden_size == arch.intermediate_size
            )
        else:
            out[dim] = getattr(arch, dim)
    return out


@functools.lru_cache(maxsize=16)
def _member_params(sub: SubSpace) -> list[tuple[Arch, dict[str, Any]]]:
    return [(a, arch_params(a, sub)) for a in sub.archs()]


def nearest_member(params: dict[str, Any], sub: SubSpace, avoid: frozenset[str] = frozenset()) -> Arch:
    """The member whose parameters are fewest choice-steps away, preferring members whose id is
    not in `avoid` (ties: enumeration order)."""
    rank = {d: {v: i for i, v in enumerate(vals)} for d, vals in free_dims(sub).items()}
    return min(
        _member_params(sub),
        key=lambda m: (m[0].id in avoid, sum(abs(rank[d][m[1][d]] - rank[d][params[d]]) for d in rank)),
    )[0]


CLAIM_ATTEMPTS = 8  # re-choices after a concurrent worker took the same member


def suggest_arch(trial: optuna.Trial, sub: SubSpace) -> Arch:
    """Suggest each free dimension categorically. A combination that is no member (excluded by the
    family's rules, or outside a cost band), or a member the study has already tried (finished,
    failed, or running in another worker), is mapped to the nearest member not yet tried, and the
    trial records that (`repaired`): proposals outside a band would otherwise collapse onto the
    same few boundary members, and repeats would spend the trial budget on what is known. Only
    when every member has been tried is a repeat kept (and its measurement reused). The chosen id
    is recorded at once, so concurrent trials see it, and checked again after recording: two
    workers can choose one member between reading what is tried and recording their choice; the
    later of the two always sees the earlier one's record and chooses again."""
    params = {dim: trial.suggest_categorical(dim, list(values)) for dim, values in free_dims(sub).items()}
    exact = _member_by_params(sub).get(_params_key(params))
    tried = _tried_ids(trial, sub)
    if exact is not None and exact.id not in tried:
        arch = exact
    else:
        arch = nearest_member(params, sub, tried)
        trial.set_user_attr("repaired", True)
    trial.set_user_attr("arch_id", arch.id)
    for _ in range(CLAIM_ATTEMPTS):
        tried = _tried_ids(trial, sub)
        if arch.id not in tried:
            break
        again = nearest_member(params, sub, tried)
        if again.id in tried:  # every member tried: the repeat stays (its measurement is reused)
            break
        arch = again
        trial.set_user_attr("repaired", True)
        trial.set_user_attr("arch_id", arch.id)
    return arch


def _params_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@functools.lru_cache(maxsize=16)
def _member_by_params(sub: SubSpace) -> dict[tuple[tuple[str, Any], ...], Arch]:
    return {_params_key(p): a for a, p in _member_params(sub)}


def _tried_ids(trial: optuna.Trial, sub: SubSpace) -> frozenset[str]:
    """The members other trials of the study hold: by their recorded id, or, for an earlier trial
    that has recorded none yet (an enqueued warm start, queued or just taken by another worker),
    by its fixed parameters."""
    study = getattr(trial, "study", None)
    if study is None:  # a FixedTrial: no study to look at
        return frozenset()
    members = _member_by_params(sub)
    ids = set()
    for t in study.get_trials(deepcopy=False):
        if t.number == trial.number:
            continue
        if "arch_id" in t.user_attrs:
            ids.add(t.user_attrs["arch_id"])
        elif t.number < trial.number:
            params = t.params or t.system_attrs.get("fixed_params", {})
            arch = members.get(_params_key({d: params.get(d) for d in free_dims(sub)}))
            if arch is not None:
                ids.add(arch.id)
    return frozenset(ids)


@dataclass(frozen=True)
class Candidate:
    """One proposal: an architecture of a sub-space, and the evaluator's other arguments (a joint
    search's `ta_sparsity`)."""

    arch: Arch
    subspace: str
    evaluator_args: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What identifies the evaluation, for reusing a duplicate's measurement."""
        return self.arch.id + "".join(f"|{k}={v}" for k, v in sorted(self.evaluator_args.items()))


@dataclass(frozen=True)
class TrialSpace:
    """The define-by-run space of a study: an architecture of `sub`, and with `ta_sparsities` the
    scale of the teacher assistant it is distilled from (a joint search, `nas.assistants.joint`)."""

    sub: SubSpace
    ta_sparsities: tuple[float, ...] = ()

    def extra_dims(self) -> dict[str, tuple[Any, ...]]:
        """The variables besides the architecture (the grid sampler must know every one)."""
        return {"ta_sparsity": self.ta_sparsities} if self.ta_sparsities else {}

    def candidate(self, trial: optuna.Trial) -> Candidate:
        extra = {}
        if self.ta_sparsities:
            extra["ta_sparsity"] = trial.suggest_categorical("ta_sparsity", list(self.ta_sparsities))
        return Candidate(suggest_arch(trial, self.sub), self.sub.name, extra)
