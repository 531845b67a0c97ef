"""The baselines a search evaluates first, under a budget, checked against brute force."""

from __future__ import annotations

from search_spaces import Arch, SearchSpace, baselines_under, costs, meets, uniformity
from search_spaces.hf_names import hf_config_overrides

# A derived space of 48 members (the teacher of tests/search_spaces/test_space.py).
TEACHER = Arch(family="encoder", num_layers=4, hidden_size=64, num_heads=4, num_kv_heads=4, head_dim=16,
               intermediate_size=128, vocab_size=100, max_position=64, type_vocab_size=2)


def teacher_config() -> dict:
    return {"model_type": "bert", **hf_config_overrides(TEACHER)}


def test_baselines_under_a_flops_budget_are_the_members_a_user_would_build():
    space = SearchSpace.from_teacher(teacher_config(), partitions=1)
    (sub,) = space.subspaces
    budget = {"flops": costs(space.teacher.replace(num_layers=3), 1, 64)["flops"]}  # 3 of 4 layers fit exactly
    feasible = [a for a in sub.archs() if costs(a, 1, 64)["flops"] <= budget["flops"]]
    found = baselines_under(sub, budget, 1, 64)
    assert set(found) == {"layer_drop", "uniform", "largest"}
    drop = found["layer_drop"]
    # The teacher's widths at the greatest depth that fits: one layer more does not.
    assert drop.replace(num_layers=space.teacher.num_layers) == space.teacher
    deeper = drop.replace(num_layers=drop.num_layers + 1)
    assert drop.num_layers == 3 and meets(drop, budget, 1, 64) and not meets(deeper, budget, 1, 64)
    near = [a for a in feasible if costs(a, 1, 64)["flops"] > 0.9 * budget["flops"]]
    assert found["uniform"] in near
    assert uniformity(found["uniform"], space.teacher) == min(uniformity(a, space.teacher) for a in near)
    assert costs(found["largest"], 1, 64)["params"] == max(costs(a, 1, 64)["params"] for a in feasible)
    assert baselines_under(sub, {}, 1, 64) == {} and baselines_under(sub, {"latency_ms": 1.0}, 1, 64) == {}
    assert baselines_under(sub, {"flops": 1.0}, 1, 64) == {}  # nothing fits
