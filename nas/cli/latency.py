"""`nas latency`: its parser and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.cli.args import read_arch
from search_spaces import Arch, SearchSpace


def add(commands: argparse._SubParsersAction) -> None:
    latency = commands.add_parser("latency", help="measure latency and fit a predictor").add_subparsers(
        dest="latency_command", required=True, metavar="SUBCOMMAND")
    measure = latency.add_parser("measure", help="time architectures on a device into its latency table",
                                 description="Times the stock HF model's forward (encoders) or prefill plus "
                                             "per-token decode (decoders): warm-up, repeats, median and spread.")
    what = measure.add_mutually_exclusive_group(required=True)
    what.add_argument("--arch", help="one architecture JSON (or file)")
    what.add_argument("--space", help="a built-in space name or space YAML: sample --samples of it")
    what.add_argument("--config", help="a run config: sample its space; the table goes to its run dir")
    measure.add_argument("--samples", type=int, default=40)
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--device", default="cpu")
    measure.add_argument("--batch", type=int, default=1)
    measure.add_argument("--seq-len", type=int, default=128)
    measure.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    measure.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    measure.add_argument("--repeats", type=int, default=7, help="timed runs per pass")
    measure.add_argument("--rounds", type=int, default=3, help="round-robin passes over all architectures")
    measure.add_argument("--run-dir", default="runs/latency", help="where the table goes without --config")
    measure.set_defaults(func=cmd_latency_measure)
    fit = latency.add_parser("fit", help="fit the latency predictor of a device from its table")
    fit.add_argument("--config", help="a run config (its run dir holds the table)")
    fit.add_argument("--run-dir", default="runs/latency")
    fit.add_argument("--device", default="cpu")
    fit.add_argument("--batch", type=int, default=1)
    fit.add_argument("--seq-len", type=int, default=128)
    fit.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    fit.set_defaults(func=cmd_latency_fit)


def _latency_run_dir(args: argparse.Namespace) -> tuple[Path, Any, list[Arch] | None]:
    """(run dir, teacher config or None, the space's architectures or None) of a latency command."""
    if getattr(args, "config", None):
        from nas.config import load_config
        from nas.run import open_run

        run = open_run(load_config(args.config), save_config=False)
        return run.run_dir, run.teacher_config, list(run.space.archs())
    return Path(args.run_dir), None, None


def cmd_latency_measure(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from nas.latency import measure_into_table, table_path

    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir, base, archs = _latency_run_dir(args)
    if args.arch:
        archs = [read_arch(args.arch)]
    elif args.space:
        path = Path(args.space)
        archs = list(
            (SearchSpace.load(path) if path.suffix in (".yaml", ".yml") else SearchSpace.builtin(args.space)).archs()
        )
    assert archs is not None
    if len(archs) > 1:
        rng = np.random.default_rng(args.seed)
        archs = [archs[i] for i in rng.choice(len(archs), size=min(args.samples, len(archs)), replace=False)]
    device = torch.device(args.device)
    path = table_path(run_dir, device)
    table = measure_into_table(
        archs, base, device, args.batch, args.seq_len, args.dtype, path, args.repeats, args.rounds
    )
    for point in table.points[-len(archs) :][:10]:
        arch = Arch.from_dict(point["arch"])
        decode = f", decode {point['decode_ms_per_token']:.2f} ms/token" if point.get("decode_ms_per_token") else ""
        print(f"{arch.id:<36} {point['median_ms']:9.2f} ms (spread {point['spread_ms']:.2f}){decode}")
    print(f"{len(archs)} point(s) added; table {path} now holds {len(table.points)}")


def cmd_latency_fit(args: argparse.Namespace) -> None:
    import torch

    from nas.latency import LatencyPredictor, LatencyTable, predictor_path, table_path

    run_dir, _, _ = _latency_run_dir(args)
    device = torch.device(args.device)
    path = table_path(run_dir, device)
    if not path.is_file():
        raise FileNotFoundError(f"latency fit: no table for {device} at {path}; run `nas latency measure` first")
    table = LatencyTable.load(path)
    archs, ms = table.samples(args.batch, args.seq_len, args.dtype)
    predictor = LatencyPredictor.fit(archs, ms, args.batch, args.seq_len, args.dtype, table.device)
    predictor.save(predictor_path(run_dir, device))
    print(
        f"predictor for {device} from {predictor.n_points} point(s): training MAPE {predictor.train_mape:.1%}, "
        f"max {predictor.train_max_ape:.1%}; saved to {predictor_path(run_dir, device)}"
    )
