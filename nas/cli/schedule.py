"""`nas schedule`: its parser and its handler."""

from __future__ import annotations

import argparse
import json

from nas.cli.args import human
from search_spaces import flops, params


def add(commands: argparse._SubParsersAction) -> None:
    sched = commands.add_parser("schedule", help="choose teacher assistants by the lambda-tradeoff (MiniDisc)",
                                description="Train the once-for-all TA supernet, score a grid of TA candidates "
                                            "(P), pick argmax P + lambda x sparsity per sub-space, record it.")
    sched.add_argument("config", help="run config YAML")
    sched.add_argument("--steps", type=int, default=1, help="TAs in the chain (default 1)")
    sched.add_argument("--lambda", dest="tradeoff", type=float, help="lambda (default: assistants.lambda)")
    sched.add_argument("--subspace", action="append", help="only this sub-space (repeatable)")
    sched.add_argument("--device", help="cpu, cuda or cuda:N")
    sched.add_argument("--json", action="store_true")
    sched.add_argument("--no-progress", action="store_true")
    sched.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> None:
    from nas.assistants.schedule import run_schedule
    from nas.config import load_config

    s = run_schedule(load_config(args.config), steps=args.steps, lam=args.tradeoff, subspaces=args.subspace,
                     device=args.device, progress=not args.no_progress)
    rows = [{"grid_sparsity": x.candidate.grid_sparsity, "sparsity": round(x.candidate.sparsity, 4),
             "params": params(x.candidate.arch).total, "flops": flops(x.candidate.arch, 1, 128),
             "P": round(x.performance, 4), "T": round(x.score, 4), "arch_id": x.candidate.arch.id} for x in s.scored]
    chains = {sub: [x.candidate.arch.id for x in chain] for sub, chain in s.chains.items()}
    if args.json:
        print(json.dumps({"measure": s.measure, "lambda": s.lam, "candidates": rows, "targets": s.targets,
                          "chains": chains}, indent=2))
        return
    print(f"TA candidates (sparsity in {s.measure}; T = P + {s.lam} x sparsity; FLOPs at 1x128)")
    print(f"{'grid':>5} {'sparsity':>8} {'params':>9} {'FLOPs':>9} {'P':>7} {'T':>7}  arch")
    for r in rows:
        print(f"{r['grid_sparsity']:>5} {r['sparsity']:>8.3f} {human(r['params']):>9} {human(r['flops']):>9} "
              f"{r['P']:>7.4f} {r['T']:>7.4f}  {r['arch_id']}")
    for sub, chain in chains.items():
        target = human(s.targets[sub])
        print(
            f"{sub}: target {s.measure} {target}: "
            + (
                " -> ".join(["teacher", *chain, "student"])
                if chain
                else "no candidate is that large; distil from the teacher directly"
            )
        )
