"""How much of the exact Pareto front each sampler finds, on a trained supernet of a real teacher.

The supernet is the decoder quickstart's (SmolLM2-135M, trained on cached teacher distributions
over movie-review text; `--run-config` names its run, or it is trained here from
nas/configs/decoder-smollm2.yaml). The searched space is one cost band of the teacher's derived
space cut into four (`--band`; 1,281 members, five searched dimensions: layers, hidden, heads,
KV heads, FFN), under an active FLOPs budget: the band's median FLOPs, so about half the band is
feasible. Every member is scored once with inherited weights (next-token loss against the
teacher's held-out targets, `--eval-batches` batches) and FLOPs: the exact feasible front.

Then each sampler runs through the project's own `suggest_arch`, `make_sampler` and constraints
(one `Trial.set_constraint` per budget, as a search records them), looking a trial's scores up in
the table instead of recomputing them (scores are deterministic), for 25% of the band's size, with
`--seeds` seeds; the 10% figures are each run's first 10% of trials (so NSGA-II's population is
the one of the 25% run). Per run: hypervolume of its feasible trials as a fraction of the exact
front's (objectives normalised to [0, 1] over the feasible members, reference point 1.1) and the
share of the exact front's members it evaluated. Reported: mean and 95% t-interval over seeds.
GP is slow here (seconds per proposal, growing with the trials), so it runs `--gp-seeds` seeds
at 10% only; its time per proposal is reported.

Pass rule (fixed before the run): the sampler `search.sampler: auto` uses for two objectives
reaches a mean of >= 0.98 of the exact hypervolume at 25% of the space, with its 95% interval
above random search's. The table says which sampler should be that default.

    python benchmarks/search_efficiency.py [--work runs/bench-search] [--run-config CONFIG] [--seeds 20]

Resumable: the score table and each finished (sampler, seed) are kept under --work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml
from evidence import log, save_results, t_interval

from nas.config import SearchConfig, parse_config
from nas.run import load_teacher_net, load_trained_supernet, open_run
from nas.search.evaluate import Measurement, SupernetEvaluator, held_out_targets, record
from nas.search.space import free_dims, suggest_arch
from nas.search.study import prepare_search
from nas.search.trials import make_sampler
from nas.train import run_train
from search_spaces import SearchSpace, SubSpace, flops

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "nas" / "configs" / "decoder-smollm2.yaml"
OBJECTIVES = ["lm_loss", "flops"]
SAMPLERS = ("nsga2", "tpe", "random", "gp")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of `values` (minimised) that no other row dominates."""
    keep = np.ones(len(values), dtype=bool)
    for i, v in enumerate(values):
        keep[i] = not np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))
    return keep


def hypervolume(points: np.ndarray) -> float:
    from optuna._hypervolume import compute_hypervolume

    if len(points) == 0:
        return 0.0
    return float(compute_hypervolume(points, np.array([1.1, 1.1])))  # dominated points add nothing


def score_table(work: Path, band: SubSpace, evaluator: SupernetEvaluator) -> dict[str, dict[str, Any]]:
    """Every member's objectives and constraints, saved every 50 members (resumable)."""
    path = work / f"table-{band.name}.json"
    table: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    todo = [a for a in band.archs() if a.id not in table]
    t0 = time.perf_counter()
    for i, arch in enumerate(todo, 1):
        m = evaluator.measure(arch)
        table[arch.id] = {"objectives": m.objectives, "constraints": m.constraints, "feasible": m.feasible,
                          "arch": arch.to_dict()}
        if i % 50 == 0 or i == len(todo):
            path.write_text(json.dumps(table))
            log(f"scored {len(table)}/{band.size} members ({(time.perf_counter() - t0) / i:.2f} s each)")
    return table


def run_sampler(name: str, seed: int, trials: int, band: SubSpace, table: dict[str, dict[str, Any]],
                budgets: dict[str, float]) -> dict[str, Any]:
    """One search of `trials` trials; returns the arch id of each trial in order and its time."""
    cfg = SearchConfig(objectives=OBJECTIVES, trials=trials, seed=seed, sampler=name, budgets=budgets)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(name, band, cfg))

    def objective(trial: optuna.Trial) -> list[float]:
        arch = suggest_arch(trial, band)
        row = table[arch.id]
        record(trial, Measurement(arch, row["objectives"], row["constraints"]), budgets)
        return [row["objectives"][n] for n in OBJECTIVES]

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return {"ids": [t.user_attrs["arch_id"] for t in study.trials], "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--run-config", type=Path, help="a trained decoder run's config.yaml (default: train one "
                                                        "under --work from nas/configs/decoder-smollm2.yaml)")
    parser.add_argument("--band", type=int, default=1, help="which of the 4 cost bands (0 = cheapest)")
    parser.add_argument("--eval-batches", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--gp-seeds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "runs.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}

    # -- the trained supernet and the exhaustive table ------------------------------------
    if args.run_config:
        raw = yaml.safe_load(args.run_config.read_text())
    else:
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        raw["run_dir"] = str(work / "run")
    config = parse_config(raw)
    run = open_run(config, save_config=not args.run_config)
    full = run.space.subspaces[0]
    if len(run.space.subspaces) != 1:
        raise SystemExit("--run-config: the run must have one sub-space (space.partitions: 1) whose supernet "
                         "holds every band")
    s0 = time.perf_counter()
    run_train(config, progress=False)  # a no-op when trained
    train_s = time.perf_counter() - s0
    band = SearchSpace.from_teacher(run.teacher_config.to_dict(), partitions=4,
                                    layer_policy=config.space.layer_policy).subspaces[args.band]
    dev = torch.device("cpu")
    seq_len = config.data.seq_len
    search = config.search.model_copy(update={"proxy_steps": 0, "eval_batches": args.eval_batches,
                                              "seq_len": seq_len, "batch_size": 1})
    band_flops = sorted(flops(a, 1, seq_len) for a in band.archs())
    budgets = {"flops": float(band_flops[len(band_flops) // 2])}
    setup = prepare_search(config, search, [full], run, dev, False)
    supernet, ckpt = load_trained_supernet(run, full.name, dev)
    evaluator = SupernetEvaluator(supernet, setup.batches, setup.targets, config.train.loss, run.relation_heads,
                                  1, seq_len, budgets, dev)
    s0 = time.perf_counter()
    table = score_table(work, band, evaluator)
    score_s = time.perf_counter() - s0
    # The teacher's held-out targets computed once (as a search does) against recomputed for every
    # candidate: the same 10 members, alternating, so both arms see the same machine load.
    teacher = load_teacher_net(run, dev)
    cached_s = fresh_s = 0.0
    for arch in band.sample(0, 10):
        t0 = time.perf_counter()
        evaluator.measure(arch)
        cached_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        targets = held_out_targets(teacher, setup.batches, config.train.loss, run.relation_heads)
        evaluator_fresh = SupernetEvaluator(supernet, setup.batches, targets, config.train.loss, run.relation_heads,
                                            1, seq_len, budgets, dev)
        evaluator_fresh.measure(arch)
        fresh_s += time.perf_counter() - t0
    del supernet, setup, teacher

    feasible = [i for i, r in table.items() if r["feasible"]]
    values = np.array([[table[i]["objectives"][n] for n in OBJECTIVES] for i in feasible])
    lo, hi = values.min(0), values.max(0)

    def norm(ids: list[str]) -> np.ndarray:
        ok = [i for i in dict.fromkeys(ids) if table[i]["feasible"]]
        pts = np.array([[table[i]["objectives"][n] for n in OBJECTIVES] for i in ok]).reshape(-1, 2)
        return (pts - lo) / (hi - lo)

    exact_ids = [i for i, keep in zip(feasible, pareto_mask(values)) if keep]
    exact_hv = hypervolume(norm(feasible))
    size = band.size
    budgets_at = {"10%": round(0.10 * size), "25%": round(0.25 * size)}

    def summarise(final: bool) -> None:
        """The table from the runs so far, written to the results JSON."""
        rows = []
        for sampler in SAMPLERS:
            for label, n in budgets_at.items():
                runs = [r for k, r in state.items() if k.startswith(f"{sampler}/") and len(r["ids"]) >= n]
                if not runs:
                    continue
                fracs = [hypervolume(norm(r["ids"][:n])) / exact_hv for r in runs]
                shares = [len(set(r["ids"][:n]) & set(exact_ids)) / len(exact_ids) for r in runs]
                distinct = [len(set(r["ids"][:n])) / n for r in runs]
                mean, lo_ci, hi_ci = t_interval(fracs)
                smean, slo, shi = t_interval(shares)
                rows.append({"sampler": sampler, "space_share": label, "trials": n, "seeds": len(runs),
                             "hv_frac_mean": mean, "hv_frac_ci95": [lo_ci, hi_ci], "hv_frac_min": min(fracs),
                             "front_share_mean": smean, "front_share_ci95": [slo, shi],
                             "distinct_share": statistics.mean(distinct),
                             "s_per_trial": statistics.mean(r["seconds"] / len(r["ids"]) for r in runs)})
        default = make_sampler("auto", band, SearchConfig(objectives=OBJECTIVES, trials=budgets_at["25%"]))
        default_name = {"NSGAIISampler": "nsga2", "TPESampler": "tpe", "GPSampler": "gp",
                        "RandomSampler": "random"}.get(type(default).__name__, type(default).__name__)
        at25 = {r["sampler"]: r for r in rows if r["space_share"] == "25%"}
        verdict = None
        if default_name in at25 and "random" in at25:
            d, rnd = at25[default_name], at25["random"]
            verdict = bool(d["hv_frac_mean"] >= 0.98 and d["hv_frac_ci95"][0] > rnd["hv_frac_ci95"][1])
        report = {
            "benchmark": "search_efficiency", "teacher": config.teacher.id, "run_dir": str(run.run_dir),
            "supernet_step": ckpt.step, "band": band.name, "band_size": size,
            "dims": {d: list(v) for d, v in free_dims(band).items()},
            "budgets": budgets, "feasible": len(feasible), "exact_front_size": len(exact_ids),
            "eval_batches": args.eval_batches, "train_s": train_s, "score_s_this_run": score_s,
            "teacher_targets_once_s_per_eval": cached_s / 10, "teacher_each_time_s_per_eval": fresh_s / 10,
            "teacher_targets_speedup": fresh_s / cached_s,
            "trials_at": budgets_at, "rows": rows, "default_sampler": default_name, "pass": verdict,
            "pass_rule": "default sampler >= 0.98 of the exact hypervolume at 25%, 95% interval above random's",
        }
        save_results("search_efficiency", report)
        if not final:
            return
        print(f"band {band.name}: {size} members, {len(feasible)} under flops <= {budgets['flops']:.3g}, exact front "
              f"{len(exact_ids)}; default sampler for two objectives: {default_name}; pass: {verdict}")
        print(table_md(rows))

    # -- the samplers --------------------------------------------------------------------------
    plan = [(s, seed, budgets_at["25%"]) for seed in range(args.seeds) for s in SAMPLERS if s != "gp"]
    plan += [("gp", seed, budgets_at["10%"]) for seed in range(args.gp_seeds)]
    for sampler, seed, trials in plan:
        key = f"{sampler}/{seed}/{trials}"
        if key in state:
            continue
        state[key] = run_sampler(sampler, seed, trials, band, table, budgets)
        state_path.write_text(json.dumps(state))
        log(f"{key}: {state[key]['seconds']:.1f} s")
        summarise(final=False)  # a run cut short still leaves a table of what finished
    summarise(final=True)


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = ["| sampler | share of space | trials | seeds | hypervolume / exact [95% CI] | worst seed | "
             "exact front found [95% CI] | distinct members | s per trial |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['sampler']} | {r['space_share']} | {r['trials']} | {r['seeds']} | {r['hv_frac_mean']:.3f} "
            f"[{r['hv_frac_ci95'][0]:.3f}, {r['hv_frac_ci95'][1]:.3f}] | {r['hv_frac_min']:.3f} | "
            f"{r['front_share_mean']:.2f} [{r['front_share_ci95'][0]:.2f}, {r['front_share_ci95'][1]:.2f}] | "
            f"{r['distinct_share']:.2f} | {r['s_per_trial']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
