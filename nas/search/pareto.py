"""Pareto queries over the study storage. They read the storage only, never a supernet."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from nas.config import BUDGET_KEYS as COSTS  # every cost objective (latency included)
from nas.storage import StorageError, open_storage, study_names


@dataclass
class Point:
    study: str
    subspace: str
    trial_id: int
    number: int
    arch_id: str
    arch: dict[str, Any]
    objectives: dict[str, float]
    feasible: bool
    settings: dict[str, Any]  # the study's batch, seq_len and latency dtype for costs


def load_points(storage_url: str, studies: list[str] | None = None) -> tuple[list[Point], dict[str, str]]:
    """Every complete trial of the chosen studies (all when None) and the objective directions."""
    storage = open_storage(storage_url)
    names = study_names(storage)
    for name in studies or []:
        if name not in names:
            raise StorageError(f"--study: no study {name!r} in {storage_url}; studies: {names}")
    points, directions = [], {}
    for name in studies or names:
        study = optuna.load_study(study_name=name, storage=storage)
        objectives = study.user_attrs.get("objectives", [])
        settings = {k: study.user_attrs.get(k) for k in ("batch", "seq_len", "latency_dtype")}
        for obj, direction in zip(objectives, study.directions):
            directions[obj] = "minimize" if direction == optuna.study.StudyDirection.MINIMIZE else "maximize"
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "objectives" not in t.user_attrs:
                continue
            points.append(
                Point(
                    name,
                    t.user_attrs.get("subspace", ""),
                    t._trial_id,
                    t.number,
                    t.user_attrs["arch_id"],
                    t.user_attrs["arch"],
                    t.user_attrs["objectives"],
                    bool(t.user_attrs.get("feasible", True)),
                    settings,
                )
            )
    return points, directions


def _signed(p: Point, objectives: list[str], directions: dict[str, str]) -> np.ndarray:
    """Objective values as minimisation values."""
    return np.array([p.objectives[o] * (1 if directions.get(o, "minimize") == "minimize" else -1) for o in objectives])


def pareto_front(
    points: list[Point], objectives: list[str], directions: dict[str, str], budgets: dict[str, float] | None = None
) -> list[Point]:
    """Feasible, within the query budgets, one per architecture, non-dominated; sorted by cost."""
    budgets = budgets or {}
    seen: set[str] = set()
    kept = []
    for p in points:
        if not p.feasible or p.arch_id in seen or any(o not in p.objectives for o in objectives):
            continue
        if any(p.objectives.get(k, float("inf")) > v for k, v in budgets.items()):
            continue
        seen.add(p.arch_id)
        kept.append(p)
    values = [_signed(p, objectives, directions) for p in kept]
    front = [p for p, v in zip(kept, values) if not any(np.all(w <= v) and np.any(w < v) for w in values)]
    sort_key = next((o for o in objectives if o in COSTS), objectives[0])
    return sorted(front, key=lambda p: (p.objectives[sort_key], p.trial_id))


def hypervolume(front: list[Point], objectives: list[str], directions: dict[str, str], reference: np.ndarray) -> float:
    """Optuna's exact hypervolume of the front against `reference` (minimisation values)."""
    from optuna._hypervolume import compute_hypervolume  # Optuna's implementation (WFG)

    if not front:
        return 0.0
    values = np.array([_signed(p, objectives, directions) for p in front])
    return float(compute_hypervolume(values, reference))


def reference_point(points: list[Point], objectives: list[str], directions: dict[str, str]) -> np.ndarray:
    """The worst value of each objective over the given points, pushed out by 10%."""
    values = np.array([_signed(p, objectives, directions) for p in points])
    worst = values.max(axis=0)
    return worst + 0.1 * np.abs(worst) + 1e-12


def format_front(front: list[Point], objectives: list[str], fmt: str) -> str:
    rows = [
        {
            "study": p.study,
            "subspace": p.subspace,
            "trial_id": p.trial_id,
            "arch_id": p.arch_id,
            **{o: p.objectives[o] for o in objectives},
        }
        for p in front
    ]
    if fmt == "json":
        return json.dumps([{**r, "arch": p.arch, "objectives": p.objectives} for r, p in zip(rows, front)], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["trial_id"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    header = f"{'trial':>6} {'sub-space':<9} {'arch':<34} " + " ".join(f"{o:>14}" for o in objectives)
    lines = [header]
    for r in rows:
        vals = " ".join(f"{r[o]:>14.4g}" for o in objectives)
        lines.append(f"{r['trial_id']:>6} {r['subspace']:<9} {r['arch_id']:<34} {vals}")
    return "\n".join(lines)


def plot_front(points: list[Point], front: list[Point], objectives: list[str], path: Path) -> None:
    """Scatter of every feasible point per sub-space (x: first cost, y: first quality) with the
    front drawn over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = next((o for o in objectives if o in COSTS), objectives[0])
    y_key = next((o for o in objectives if o != x_key), x_key)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sub in sorted({p.subspace for p in points}):
        mine = [p for p in points if p.subspace == sub and p.feasible]
        ax.scatter(
            [p.objectives[x_key] for p in mine],
            [p.objectives[y_key] for p in mine],
            s=18,
            alpha=0.5,
            label=html.escape(sub),
        )
    ax.plot([p.objectives[x_key] for p in front], [p.objectives[y_key] for p in front], "k.-", label="Pareto front")
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    ax.set_xscale("log" if x_key in COSTS else "linear")
    ax.legend()
    ax.set_title("feasible students and the Pareto front")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def point_dict(p: Point) -> dict[str, Any]:
    return asdict(p)
