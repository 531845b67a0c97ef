"""`nas cost`: its parser and its handler."""

from __future__ import annotations

import argparse
import json

from nas.cli.args import read_arch
from search_spaces import flops, params


def add(commands: argparse._SubParsersAction) -> None:
    cost = commands.add_parser("cost", help="params and FLOPs of one architecture",
                               description="Exact params (total, non-embedding) and forward FLOPs "
                                           "(2 x MACs incl. attention products) of an architecture.")
    cost.add_argument("--arch", required=True, help="architecture JSON, or a file holding it")
    cost.add_argument("--batch", type=int, default=1)
    cost.add_argument("--seq-len", type=int, default=128)
    cost.add_argument("--json", action="store_true")
    cost.set_defaults(func=cmd_cost)


def cmd_cost(args: argparse.Namespace) -> None:
    arch = read_arch(args.arch)
    count = params(arch)
    result = {
        "arch_id": arch.id, "params_total": count.total, "params_non_embedding": count.non_embedding,
        "flops": flops(arch, args.batch, args.seq_len), "batch": args.batch, "seq_len": args.seq_len,
    }
    if arch.family == "decoder":
        result["flops_without_lm_head"] = flops(arch, args.batch, args.seq_len, include_lm_head=False)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:<24} {value:,}" if isinstance(value, int) else f"{key:<24} {value}")
