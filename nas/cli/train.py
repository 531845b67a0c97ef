"""`nas train`: its parser and its handler."""

from __future__ import annotations

import argparse


def add(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train the supernet of every sub-space of a run",
                                description="Sandwich-rule distillation of one weight-sharing supernet per "
                                            "sub-space; resumes from the last checkpoint in the run directory.")
    train.add_argument("config", help="run config YAML")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: the config's train.device)")
    train.add_argument("--subspace", action="append", help="train only this sub-space (repeatable)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--workers", type=int, help="Ray Train data-parallel workers per supernet (default ray.workers)")
    train.add_argument("--ray-address", help="train on this Ray cluster (default ray.address; 'local' starts one)")
    how = train.add_mutually_exclusive_group()
    how.add_argument("--teacher-free", action="store_true",
                     help="no teacher: the truncated teacher trained on next-token loss (decoders)")
    how.add_argument("--via-assistant", action="store_true",
                     help="distil through the teacher-assistant chain `nas schedule` recorded")
    train.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.train import run_train

    results = run_train(load_config(args.config), device=args.device, subspaces=args.subspace,
                        progress=not args.no_progress, teacher_free=args.teacher_free, via_assistant=args.via_assistant,
                        workers=args.workers, ray_address=args.ray_address)
    for r in results:
        evals = ", ".join(f"{k} {v.get('total', float('nan')):.4f}" for k, v in r.last_eval.items())
        skipped = f", {len(r.skipped_steps)} skipped step(s)" if r.skipped_steps else ""
        print(f"{r.subspace}: step {r.step}, checkpoint {r.checkpoint}{skipped}, training {r.train_flops:.3g} FLOPs"
              + (f"; held-out loss {evals}" if evals else ""))
