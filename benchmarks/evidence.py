"""What every benchmark shares: where results go, paired intervals, and a timestamped log line.

Benchmarks run as scripts (`python benchmarks/NAME.py`), so this module is imported by its bare
name from the scripts' own folder.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def save_results(name: str, report: dict[str, Any]) -> Path:
    """Write `report` to benchmarks/results/NAME.json (values JSON cannot hold become strings)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # never a torn file, whoever writes it
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, path)
    return path


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences (NaN bounds for fewer than two)."""
    from scipy import stats

    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def merge_json(path: Path, entries: dict[str, Any], keep_existing: bool = False) -> dict[str, Any]:
    """Add `entries` to the JSON object in `path` as it is on disk now (another benchmark process
    may have added its own since this one read it), written whole and renamed into place; with
    `keep_existing`, keys already there keep their value. Returns the merged object."""
    with exclusive(path):  # read, merge and write as one step: no other process's entries lost
        merged = json.loads(path.read_text()) if path.is_file() else {}
        merged = {**entries, **merged} if keep_existing else {**merged, **entries}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=2))
        os.replace(tmp, path)
    return merged


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock named after `path` (PATH.lock beside it) while the block runs:
    benchmark processes sharing a work folder wait for each other's run of the same stage, then
    reuse it, instead of running it twice or writing into one folder together."""
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield
