"""How much of the exact Pareto front each sampler finds at equal trial budgets.

On a sub-space small enough to enumerate (a tiny random BERT teacher, 150 architectures), every
architecture is scored once with inherited weights (relation KD on held-out batches, and FLOPs)
to get the exhaustive front. NSGA-II, TPE and random search then run through the project's own
`suggest_arch` / `make_sampler` at equal budgets and several seeds; each run's hypervolume is
reported as a fraction of the exhaustive front's (objectives normalised to [0, 1] over the whole
space, reference point 1.1 in each). Scores are deterministic, so a trial looks its scores up in
the exhaustive table instead of recomputing them. Also measured: candidate evaluations per second
with the teacher's held-out targets cached (as the search does) and recomputed per candidate.
Targets (issue 4): >= 0.98 of the exhaustive hypervolume at 25% of the space, ahead of random.

    python benchmarks/search_efficiency.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import optuna
import torch
from evidence import save_results

from nas.config import SearchConfig
from nas.search.evaluate import SupernetEvaluator, held_out_targets
from nas.search.space import suggest_arch
from nas.search.trials import make_sampler
from search_spaces import Arch, SearchSpace, hf_config_overrides
from supernet.config import LossConfig
from supernet.hf_models import build_model
from supernet.registry import build_supernet

TEACHER = Arch(family="encoder", num_layers=6, hidden_size=96, num_heads=6, num_kv_heads=6, head_dim=16,
               intermediate_size=192, vocab_size=1000, max_position=64, type_vocab_size=2)


def hypervolume_fraction(found: np.ndarray, exact_hv: float) -> float:
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(found, np.array([1.1, 1.1]))) / exact_hv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.manual_seed(0)
    teacher_model = build_model(TEACHER)
    space = SearchSpace.from_teacher({"model_type": "bert", **hf_config_overrides(TEACHER)}, partitions=1)
    sub = space.subspaces[0]
    teacher = build_supernet(teacher_model).eval()
    supernet = build_supernet(teacher_model).eval()
    g = torch.Generator().manual_seed(0)
    batches = [
        {
            "input_ids": torch.randint(0, 1000, (8, 32), generator=g),
            "attention_mask": torch.ones(8, 32, dtype=torch.long),
        }
        for _ in range(2)
    ]
    loss, heads = LossConfig(), 8
    with torch.no_grad():
        targets = held_out_targets(teacher, batches, loss, heads)
    evaluator = SupernetEvaluator(supernet, batches, targets, loss, heads, 1, 32, {}, torch.device("cpu"))

    t0 = time.perf_counter()
    table = {a.id: evaluator.measure(a).objectives for a in sub.archs()}
    cached_rate = len(table) / (time.perf_counter() - t0)
    sample = sub.sample(1, 20)
    t0 = time.perf_counter()
    for a in sample:  # the same scoring with the teacher re-run for every candidate
        fresh = held_out_targets(teacher, batches, loss, heads)
        SupernetEvaluator(supernet, batches, fresh, loss, heads, 1, 32, {}, torch.device("cpu")).measure(a)
    uncached_rate = len(sample) / (time.perf_counter() - t0)

    names = ["relation_kd", "flops"]
    values = np.array([[table[a.id][n] for n in names] for a in sub.archs()])
    lo, hi = values.min(0), values.max(0)
    norm = lambda v: (np.asarray(v) - lo) / (hi - lo)  # noqa: E731
    exact_hv = hypervolume_fraction(norm(values), 1.0)

    size = sub.size
    budgets = [16, round(0.25 * size), 64]
    rows = []
    for sampler in ("nsga2", "tpe", "random"):
        for budget in budgets:
            fractions = []
            for seed in range(args.seeds):
                cfg = SearchConfig(objectives=names, trials=budget, seed=seed, sampler=sampler)
                study = optuna.create_study(
                    directions=["minimize", "minimize"], sampler=make_sampler(sampler, sub, cfg)
                )

                def objective(trial: optuna.Trial) -> list[float]:
                    arch = suggest_arch(trial, sub)
                    return [table[arch.id][n] for n in names]

                study.optimize(objective, n_trials=budget)
                found = norm([t.values for t in study.trials])
                fractions.append(hypervolume_fraction(found, exact_hv))
            rows.append(
                {
                    "sampler": sampler,
                    "trials": budget,
                    "space_frac": budget / size,
                    "hv_frac_mean": statistics.mean(fractions),
                    "hv_frac_min": min(fractions),
                    "seeds": args.seeds,
                }
            )
    report = {
        "benchmark": "search_efficiency",
        "space_size": size,
        "objectives": names,
        "budgets": budgets,
        "exact_front_size": int(sum(1 for v in values if not any(np.all(w <= v) and np.any(w < v) for w in values))),
        "evals_per_s_cached_teacher": cached_rate,
        "evals_per_s_teacher_each_time": uncached_rate,
        "cache_speedup": cached_rate / uncached_rate,
        "rows": rows,
        "targets": {"hv_frac_at_25pct": 0.98, "ahead_of_random": True},
    }
    save_results("search_efficiency", report)
    print(
        f"space: {size} architectures (exact front: {report['exact_front_size']}); evaluations/s: "
        f"{cached_rate:.1f} with the teacher cache, {uncached_rate:.1f} without ({report['cache_speedup']:.2f}x)"
    )
    print("| sampler | trials | share of space | hypervolume / exhaustive (mean over seeds) | worst seed |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sampler']} | {r['trials']} | {r['space_frac']:.0%} | {r['hv_frac_mean']:.3f} | "
            f"{r['hv_frac_min']:.3f} |"
        )


if __name__ == "__main__":
    main()
