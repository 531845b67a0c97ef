"""`nas distill`: its parser and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.args import read_arch
from search_spaces import Arch


def add(commands: argparse._SubParsersAction) -> None:
    dist = commands.add_parser("distill", help="continue distilling one chosen architecture (resumable)",
                               description="From an exported student (--student) or the teacher's slice (--arch, "
                                           "--layers), distil from the run's teacher for --steps steps; writes a "
                                           "stock HF directory.")
    dist.add_argument("config", help="the run config YAML (teacher, data, loss)")
    source = dist.add_mutually_exclusive_group(required=True)
    source.add_argument("--student", type=Path, help="an exported student directory")
    source.add_argument("--arch", help="an architecture as JSON (or a file holding it): start from the teacher's slice")
    dist.add_argument("--layers", default="first", help="with --arch, which teacher layers the slice keeps: "
                                                        "first (default), uniform, every_other, autodistil")
    dist.add_argument("--importance-order", action="store_true",
                      help="with --arch, slice the teacher after reordering its heads and FFN neurons by importance "
                           "(as supernets are cut)")
    dist.add_argument("--steps", type=int, required=True)
    dist.add_argument("--out", type=Path, required=True)
    dist.add_argument("--device")
    dist.add_argument("--force", action="store_true", help="write into a non-empty --out")
    dist.set_defaults(func=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.distill import distill

    r = distill(load_config(args.config), args.out, args.steps, student=args.student,
                arch=read_arch(args.arch) if args.arch else None, layers=args.layers,
                importance=args.importance_order, device=args.device,
                force=args.force)
    print(f"distilled {Arch.from_dict(r.arch).id} ({r.source}) for {r.steps} steps, {r.train_flops:.3g} training "
          f"FLOPs: {r.out}")
