"""Argument types and formatting shared by the commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from search_spaces import Arch, SearchSpace


def load_space(args: argparse.Namespace) -> SearchSpace:
    if args.teacher:
        from supernet import teachers

        config = teachers.load_config(args.teacher)
        return SearchSpace.from_teacher(config.to_dict(), partitions=args.partitions or 3,
                                        name=f"derived:{args.teacher}", partition_by=args.partition_by)
    if not args.name:
        raise ValueError("space show: give a built-in space name, a space YAML file, or --teacher")
    path = Path(args.name)
    space = SearchSpace.load(path) if path.suffix in (".yaml", ".yml") else SearchSpace.builtin(args.name)
    return space.partition(args.partitions, args.partition_by) if args.partitions else space


def floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; give numbers separated by commas") from None


def ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; give whole numbers separated by commas") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"got {text!r}; give TRAIN,DEV,TEST")
    return values


def span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def read_arch(text: str) -> Arch:
    path = Path(text)
    if not text.lstrip().startswith("{") and path.is_file():
        text = path.read_text()
    return Arch.from_json(text)
