"""`nas search`: its parser and its handler."""

from __future__ import annotations

import argparse


def add(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser("search", help="search every sub-space's trained supernet",
                                 description="Multi-objective Optuna search with inherited weights, one study "
                                             "per sub-space in the run's storage; resumes up to --trials.")
    search.add_argument("config", help="run config YAML")
    search.add_argument("--trials", type=int, help="trials per sub-space (default: search.trials)")
    search.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    search.add_argument("--sampler", choices=["auto", "nsga2", "tpe", "gp", "random", "grid"])
    search.add_argument("--ray-address", help="run trials as Ray Tune trials on this cluster")
    search.add_argument("--subspace", action="append", help="search only this sub-space (repeatable)")
    search.add_argument("--device", help="cpu, cuda or cuda:N")
    search.add_argument("--joint-assistant", action="store_true",
                        help="search the TA scale with the student: each trial distils its student from its TA")
    search.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.search.study import run_search

    results = run_search(load_config(args.config), trials=args.trials, timeout=args.timeout, sampler=args.sampler,
                         ray_address=args.ray_address, subspaces=args.subspace, device=args.device,
                         joint_assistant=args.joint_assistant)
    for r in results:
        print(
            f"{r.subspace}: study {r.study_name}: {r.finished} finished trial(s), {r.complete} complete, "
            f"{r.failed} failed"
        )
