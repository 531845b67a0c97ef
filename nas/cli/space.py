"""`nas space`: its parser and its handler."""

from __future__ import annotations

import argparse
import json

from nas.cli.args import human, load_space, span
from search_spaces import params


def add(commands: argparse._SubParsersAction) -> None:
    space = commands.add_parser("space", help="inspect search spaces").add_subparsers(
        dest="space_command", required=True, metavar="SUBCOMMAND")
    show = space.add_parser("show", help="sub-spaces, sizes, and params/FLOPs ranges of a space",
                            description="Show a built-in space, a space YAML file, or the space "
                                        "derived from a teacher (--teacher PATH_OR_ID).")
    show.add_argument("name", nargs="?", help="built-in space name or a space .yaml file")
    show.add_argument(
        "--teacher", help="derive the space from this teacher (path, hub id, offline:minilm-l6, offline:smollm2-135m)"
    )
    show.add_argument("--partitions", type=int, help="split into K sub-spaces (default: 3 when derived)")
    show.add_argument(
        "--partition-by",
        choices=["cost", "box"],
        default="cost",
        help="cost: K cost bands that tile the space (default); box: AutoDistil's coupled boxes",
    )
    show.add_argument("--batch", type=int, default=1, help="batch for the FLOPs range (default 1)")
    show.add_argument("--seq-len", type=int, default=128, help="sequence length for the FLOPs range (default 128)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_space_show)


def cmd_space_show(args: argparse.Namespace) -> None:
    space = load_space(args)
    summary = space.summary(args.batch, args.seq_len)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    t = space.teacher
    print(
        f"space {space.name}  (teacher: {t.family}, {t.num_layers} layers, hidden {t.hidden_size}, "
        f"{human(params(t).total)} params; layer policy {space.layer_policy})"
    )
    print(
        f"{'sub-space':<10} {'size':>6}  {'layers':>7} {'hidden':>9} {'params':>17} "
        f"{'FLOPs @' + str(args.batch) + 'x' + str(args.seq_len):>19}"
    )
    for row, sub in zip(summary["subspaces"], space.subspaces):
        c = sub.choices
        print(
            f"{row['name']:<10} {row['size']:>6}  {span(list(c.num_layers)):>7} {span(list(c.hidden_size)):>9} "
            f"{human(row['params_min']) + '-' + human(row['params_max']):>17} "
            f"{human(row['flops_min']) + '-' + human(row['flops_max']):>19}  "
            f"supernet {human(row['supernet_params'])}"
        )
    print(f"the sub-spaces hold {summary['members']} of the {summary['box_members']} members of their union box")
