"""`nas config`: its parser and its handler."""

from __future__ import annotations

import argparse


def add(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="run configs").add_subparsers(
        dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config.add_parser("check", help="validate a run config YAML (no model is loaded)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)


def cmd_config_check(args: argparse.Namespace) -> None:
    from nas.config import load_config

    config = load_config(args.file)
    print(f"{args.file}: valid (teacher {config.teacher.id}, run dir {config.run_dir}, "
          f"storage {config.storage_url})")
