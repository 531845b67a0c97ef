"""Pareto fronts and hypervolume on hand-computed points (no storage needed for the arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search.pareto import Point, hypervolume, pareto_front, reference_point


def point(n: int, kd: float, flops: float, feasible: bool = True) -> Point:
    return Point("s", "sub", n, n, f"a{n}", {}, {"relation_kd": kd, "flops": flops, "acc": -kd}, feasible, {})


POINTS = [
    point(0, 1.0, 4.0),
    point(1, 2.0, 2.0),
    point(2, 3.0, 1.0),
    point(3, 2.5, 3.0),  # 3 is dominated by 1
    point(4, 0.5, 1.0, feasible=False),
]  # infeasible, would dominate all
DIRECTIONS = {"relation_kd": "minimize", "flops": "minimize", "acc": "maximize"}


def test_front_keeps_the_non_dominated_feasible_points():
    front = pareto_front(POINTS, ["relation_kd", "flops"], DIRECTIONS)
    assert [p.number for p in front] == [2, 1, 0]  # sorted by cost
    assert [p.number for p in pareto_front(POINTS, ["relation_kd", "flops"], DIRECTIONS, {"flops": 2.0})] == [2, 1]


def test_hypervolume_of_a_hand_computed_staircase():
    front = pareto_front(POINTS, ["relation_kd", "flops"], DIRECTIONS)
    # Reference (4, 5): the staircase (1,4), (2,2), (3,1) dominates, column by column in kd,
    # 1 x (5-4) + 1 x (5-2) + 1 x (5-1) = 8.
    assert hypervolume(front, ["relation_kd", "flops"], DIRECTIONS, np.array([4.0, 5.0])) == pytest.approx(8.0)
    # A maximised objective counts through its sign: acc = -kd gives the same area.
    assert hypervolume(front, ["acc", "flops"], DIRECTIONS, np.array([4.0, 5.0])) == pytest.approx(8.0)
    # Dropping the middle point (2,2) loses what only it dominates: (3-2) x (4-2) = 2.
    assert hypervolume(
        [front[0], front[2]], ["relation_kd", "flops"], DIRECTIONS, np.array([4.0, 5.0])
    ) == pytest.approx(6.0)
    assert hypervolume([], ["relation_kd", "flops"], DIRECTIONS, np.array([4.0, 5.0])) == 0.0


def test_reference_point_is_the_worst_value_pushed_out():
    ref = reference_point(POINTS[:4], ["relation_kd", "flops"], DIRECTIONS)
    worst = np.array([3.0, 4.0])
    assert np.all(ref > worst) and np.allclose(ref, worst + 0.1 * np.abs(worst), rtol=0.5)
