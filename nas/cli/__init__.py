"""`nas`: the command line. It parses, dispatches to library functions and prints their results.

One module per command, its parser (`add`) beside its handler. Library code returns or raises;
only these modules print and pick exit codes. An error is one line on stderr and exit status 2,
unless `--debug` asks for the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from nas.cli import (
    config_check,
    cost,
    distill,
    export,
    finetune,
    latency,
    pareto,
    quickstart,
    schedule,
    search,
    space,
    train,
)

# In the order `nas --help` lists them: inspect, then the pipeline, then the tools.
COMMANDS = (space, cost, config_check, train, schedule, search, pareto, export, distill, finetune, quickstart, latency)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Search engine for distilled student language models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(commands)
    return parser


def error_message(err: BaseException) -> str:
    """One line for an error. A Ray task's error wraps the worker's own (`cause`) under a banner
    and a remote traceback; the worker's error is the one that says what went wrong."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the CLI boundary: one line, the traceback only with --debug
        if args.debug:
            raise
        print(f"nas: error: {error_message(err)}", file=sys.stderr)
        return 2
    return 0
