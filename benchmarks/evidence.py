"""What every benchmark shares: where results go, paired intervals, and a timestamped log line.

Benchmarks run as scripts (`python benchmarks/NAME.py`), so this module is imported by its bare
name from the scripts' own folder.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def save_results(name: str, report: dict[str, Any]) -> Path:
    """Write `report` to benchmarks/results/NAME.json (values JSON cannot hold become strings)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
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
