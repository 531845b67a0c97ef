"""`nas export`: its parser and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path


def add(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export a trial as a stock Hugging Face directory",
                                 description="Extract a trial's sub-network from its supernet and write config, "
                                             "safetensors, tokenizer and a model card into --out.")
    export.add_argument("--storage", required=True)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial id (as `nas pareto` prints it)")
    which.add_argument("--best-under", help="e.g. flops=2e9: the best feasible trial within the budget")
    export.add_argument("--study", action="append", help="restrict --best-under to these studies")
    export.add_argument("--out", required=True, help="output directory (must be empty unless --force)")
    export.add_argument("--force", action="store_true")
    export.add_argument("--device", default="cpu")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    from nas.export import export

    out = export(args.storage, Path(args.out), trial_id=args.trial, best=args.best_under, studies=args.study,
                 force=args.force, device=args.device)
    print(f"exported to {out}: load it with AutoModel / AutoModelForCausalLM.from_pretrained({str(out)!r})")
