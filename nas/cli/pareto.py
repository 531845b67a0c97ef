"""`nas pareto`: its parser and its handler."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add(commands: argparse._SubParsersAction) -> None:
    pareto = commands.add_parser("pareto", help="the Pareto front of the studies in a storage",
                                 description="Non-dominated feasible trials across studies, filtered by budgets "
                                             "given now; reads the storage only.")
    pareto.add_argument("--storage", required=True, help="Optuna storage URL, e.g. sqlite:///runs/x/study.db")
    pareto.add_argument("--study", action="append", help="a study name (repeatable; default: all)")
    pareto.add_argument("--objectives", nargs="+", help="objectives to compare (default: the studies')")
    pareto.add_argument("--max-flops", type=float)
    pareto.add_argument("--max-params", type=float)
    pareto.add_argument("--max-latency-ms", type=float)
    pareto.add_argument("--format", choices=["table", "json", "csv"], default="table")
    pareto.add_argument("--plot", help="write the front plot to this PNG file")
    pareto.add_argument("--verify-latency", action="store_true",
                        help="re-measure every front point's latency here and show predicted vs measured")
    pareto.add_argument("--device", default="cpu", help="device for --verify-latency (default cpu)")
    pareto.set_defaults(func=cmd_pareto)


def cmd_pareto(args: argparse.Namespace) -> None:
    from nas.search.pareto import (
        format_front,
        hypervolume,
        load_points,
        pareto_front,
        plot_front,
        reference_point,
    )

    points, directions = load_points(args.storage, args.study)
    objectives = args.objectives or list(directions)
    unknown = [o for o in objectives if o not in {k for p in points for k in p.objectives}]
    if unknown:
        raise ValueError(f"--objectives: {unknown} not recorded in these studies")
    budgets = {k: v for k, v in (("flops", args.max_flops), ("params", args.max_params),
                                 ("latency_ms", args.max_latency_ms)) if v is not None}
    front = pareto_front(points, objectives, directions, budgets)
    print(format_front(front, objectives, args.format))
    if args.format == "table":
        feasible = [p for p in points if p.feasible]
        if feasible and front:
            ref = reference_point(feasible, objectives, directions)
            hv = hypervolume(front, objectives, directions, ref)
            print(f"{len(front)} point(s) on the front of {len(points)} complete trial(s); hypervolume {hv:.6g} "
                  f"against reference {dict(zip(objectives, (float(x) for x in ref)))} (worst feasible + 10%)")
    if args.plot:
        plot_front(points, front, objectives, Path(args.plot))
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.verify_latency:
        verify_latency(front, args.device)


def verify_latency(front: list[Any], device_name: str) -> None:
    import torch

    from nas.latency import check_front_latency

    device = torch.device(device_name)
    checks = check_front_latency(front, device)
    print(f"{'trial':>6} {'arch':<34} {'predicted ms':>13} {'measured ms':>12} {'error':>7}")
    for c in checks:
        print(f"{c.trial_id:>6} {c.arch_id:<34} {c.predicted_ms:>13.3f} {c.measured_ms:>12.3f} {c.error:>7.1%}")
    mean = sum(c.error for c in checks) / len(checks)
    print(f"mean absolute error {mean:.1%} over {len(checks)} point(s), measured on {device}")
