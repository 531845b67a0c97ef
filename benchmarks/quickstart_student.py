"""The quickstart's student against the layer-drop teacher of equal FLOPs, as a user meets them:
does the student `nas quickstart` exports, fine-tuned by the recipe `nas finetune` recommends,
beat the teacher's first layers with no training at all?

- quickstart: `nas quickstart` (encoder) on its packaged recipe (MiniLM-L6 teacher, three cost
  bands, 40 sandwich steps each, 12 TPE trials each, the best student under 1/2.7 of the teacher's
  FLOPs exported), with one change: its distillation text is the students benchmark's (the
  package's reviews that are in no task), so no task row's text is read before fine-tuning;
- layer_drop: the teacher's first N layers at full width, N the most that fit the same budget
  (DistilBERT's truncation), the teacher's weights as they are.
Both are fine-tuned on the students benchmark's tasks (IMDB and Rotten Tomatoes, 2,000 / 500 /
2,000 rows) by `nas finetune`'s recipe (3 epochs, learning rate chosen on dev among its rates with
seed 0, then seeds 1.. at that rate), 5 seeds, and compared by paired differences with 95%
t-intervals. The teacher's own runs (from the students benchmark's cache, when present) give
retention.

Pass rule, fixed before the run: quickstart - layer_drop above zero (95% interval) on every task.

Shares --work with benchmarks/students.py (tasks, distillation text, fine-tuning cache).
Writes benchmarks/results/quickstart_student.json; a lever run, one per invocation, writes
`quickstart-dN_student.json` (`--distill-steps N`), `quickstart-sN_student.json` (`--supernet-steps N`),
`quickstart-pN_student.json` (`--proxy-steps N`), `quickstart-b_student.json` (`--budget-warm-starts`)
or `quickstart-band_student.json` (`--choose-in-budget-band`: the budget warm starts, and
`student.choose_in: budget_band`, the student chosen only among the trials of the cost band that
holds the budget, as benchmarks/students.py chooses, instead of across every band's supernet).
A lever run whose student has the very weights of the run without it reuses that run's fine-tuning
(byte-identical safetensors: the same seeds would give the same numbers); `--choice-only` stops after
the quickstart's choice, to see whether a lever changes it before paying for fine-tuning.

    python benchmarks/quickstart_student.py [--work runs/bench-students] [--seeds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from evidence import log, save_results
from students import FinetuneRuns, make_tasks, summarise

# A lever's value that stands for the student's FLOPs budget, known once the run's teacher is.
STUDENT_BUDGET = object()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-students"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--split", default="2000,500,2000", help="TRAIN,DEV,TEST rows per task")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--distill-steps", type=int, default=None,
                        help="set the quickstart's student.distill_steps (default: the packaged config's); a run "
                             "already made without it is copied and resumed, so only the distillation is new")
    parser.add_argument("--supernet-steps", type=int, default=None,
                        help="set the quickstart's train.steps (default: the packaged config's, 40); a run of its "
                             "own from the start, since every stage after the supernets changes")
    parser.add_argument("--proxy-steps", type=int, default=None,
                        help="set the quickstart's search.proxy_steps (default: the packaged config's, 0); the run "
                             "without it is copied up to its trained supernets, so the search onwards is new")
    parser.add_argument("--budget-warm-starts", action="store_true",
                        help="set the quickstart's search.budgets to its student's FLOPs budget, so every band's "
                             "search starts from the baselines under it (layer drop, uniform shrink, largest); "
                             "the run without it is copied up to its trained supernets")
    parser.add_argument("--choose-in-budget-band", action="store_true",
                        help="as --budget-warm-starts, and student.choose_in: budget_band (the best trial under the "
                             "budget within the band that holds it, the students benchmark's rule)")
    parser.add_argument("--choice-only", action="store_true", help="stop after the quickstart's choice")
    args = parser.parse_args()
    # One lever per run: (its suffix in the run's name, the config fields it sets as {section:
    # {field: value}}, what of the run without it is left out when copying that run (None: a run of
    # its own from the start; the copy keeps everything the lever does not change)).
    after_supernets = ["student", "searched-student", "study.db", "front.png"]
    budget_warm_starts = {"search": {"budgets": STUDENT_BUDGET}}
    levers = [lever for lever, given in (
        ((f"d{args.distill_steps}", {"student": {"distill_steps": args.distill_steps}},
          ["student", "searched-student"]), args.distill_steps is not None),
        ((f"s{args.supernet_steps}", {"train": {"steps": args.supernet_steps}}, None),
         args.supernet_steps is not None),
        ((f"p{args.proxy_steps}", {"search": {"proxy_steps": args.proxy_steps}}, after_supernets),
         args.proxy_steps is not None),
        (("b", budget_warm_starts, after_supernets), args.budget_warm_starts),
        (("band", {**budget_warm_starts, "student": {"choose_in": "budget_band"}}, after_supernets),
         args.choose_in_budget_band),
    ) if given]
    if len(levers) > 1:
        parser.error("--distill-steps, --supernet-steps, --proxy-steps, --budget-warm-starts, "
                     "--choose-in-budget-band: one lever per run")

    import torch

    from nas.config import parse_config
    from nas.export import save_model
    from nas.quickstart import default_config, quickstart, student_budget
    from nas.run import load_teacher_net, open_run
    from search_spaces import Arch, flops
    from supernet.registry import supernet_class

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sizes = tuple(int(x) for x in args.split.split(","))
    tasks, corpus = make_tasks(work, sizes)  # type: ignore[arg-type]
    t0 = time.perf_counter()

    # -- the quickstart, its packaged config with the clean distillation text -----------
    plain = work / "quickstart-encoder"
    suffix, updates, left_out = levers[0] if levers else ("", {}, None)
    out = work / f"quickstart-encoder-{suffix}" if levers else plain
    if (out / "config.yaml").is_file():  # a run to resume: its config, the lever set again below
        data = yaml.safe_load((out / "config.yaml").read_text())
    elif left_out is not None and (plain / "config.yaml").is_file():
        shutil.copytree(plain, out, ignore=shutil.ignore_patterns(*left_out))
        data = yaml.safe_load((out / "config.yaml").read_text())
    else:
        data = default_config("encoder", out)
        data["data"] = {**data["data"], "dataset": None, "files": [str(corpus)]}
    data["run_dir"] = str(out)
    # The lever is applied to every run, a resumed one too: a folder made by an older version of
    # this script must not run without it.
    for section, fields in updates.items():
        for field, value in fields.items():
            if value is STUDENT_BUDGET:
                c = parse_config(data)
                value = {"flops": student_budget(c, open_run(c, save_config=False))}
            data[section] = {**data.get(section, {}), field: value}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(data))  # quickstart reuses a config found in --out
    result = quickstart("encoder", out, progress=False)
    assert result.student is not None and result.student_point is not None, "the quickstart exported no student"
    student, student_dir = Arch.from_dict(result.student_point.arch), result.student
    seq_len = result.config.search.seq_len
    log(f"quickstart: {student.id} (from sub-space {result.student_point.subspace}), stages {result.stage_seconds}")
    config = result.config
    run = open_run(config, save_config=False)
    cost = lambda a: flops(a, config.search.batch_size, seq_len)  # noqa: E731
    budget = result.budget_flops

    # -- the layer-drop teacher under the same budget, the teacher's weights as they are --
    full = [a for a in run.space if cost(a) <= budget and a.hidden_size == run.space.teacher.hidden_size
            and a.intermediate_size == run.space.teacher.intermediate_size]
    layer_drop = max(full, key=lambda a: a.num_layers)
    drop_dir = work / f"layer-drop-teacher-{layer_drop.id}"
    if not (drop_dir / "config.json").is_file():
        teacher = load_teacher_net(run, torch.device("cpu"))
        sliced = supernet_class(run.teacher_config.model_type)(teacher.body, "first")  # type: ignore[arg-type]
        save_model(sliced.extract(layer_drop), config, drop_dir)

    arms = {"quickstart": (student_dir, student), "layer_drop": (drop_dir, layer_drop)}
    report: dict[str, Any] = {
        "benchmark": "quickstart_student",
        "budget_flops": budget,
        "seq_len": seq_len,
        "split": sizes,
        "quickstart_stage_seconds": result.stage_seconds,
        "arms": {name: {"arch_id": a.id, "arch": a.to_dict(), "flops": cost(a), "flops_ratio": cost(a) / budget,
                        "dir": str(d)} for name, (d, a) in arms.items()},
        "args": vars(args) | {"work": str(work)},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    log("arms: " + ", ".join(f"{n} {a.id} ({cost(a) / budget:.2f} of budget)" for n, (_, a) in arms.items()))
    report["candidates_under_budget"] = candidates_under(config, run, budget)
    name_of_run = out.name.replace("-encoder", "")  # quickstart, or quickstart-dN / -sN / -pN / -b
    # A lever that left the student's weights as they were needs no fine-tuning of its own.
    quickstart_key = f"{name_of_run}-{student.id}"
    if out != plain and (plain / "student" / "model.safetensors").is_file():
        same = weights_digest(plain / "student") == weights_digest(student_dir)
        report["same_weights_as_quickstart"] = same
        if same:
            quickstart_key = f"quickstart-{student.id}"
            log("the student's weights are those of the run without the lever: its fine-tuning is reused")
    if args.choice_only:
        report["wall_s"] = time.perf_counter() - t0
        save_results(f"{name_of_run}_student", report)
        return

    # -- fine-tuning: both arms, every seed; the teacher's runs only where already cached -
    common = dict(epochs=args.epochs, seq_len=seq_len, batch_size=32, split_sizes=sizes, split_seed=0)
    # Its runs in a file of their own; the teacher's runs are read, never made, from the students
    # benchmark's cache (same tasks, same recipe).
    runs = FinetuneRuns(work, tasks, common, cache="quickstart-finetune-cache.json")
    shared = FinetuneRuns(work, tasks, common, cached_only=True)
    teacher = {t: {str(seed): r for seed in range(args.seeds) if (r := shared.get(t, "teacher", "", "plain", seed))}
               for t in tasks}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for seed in range(args.seeds):
        for task in tasks:
            for name, (directory, arch) in arms.items():
                key = quickstart_key if name == "quickstart" else directory.name
                record = runs.get(task, key, str(directory), "plain", seed)
                assert record is not None
                results.setdefault(task, {}).setdefault(name, {})[str(seed)] = record
        report["summary"] = summarise(results, teacher, reference="quickstart")
        diffs = {t: rows["layer_drop"].get("quickstart_minus_this") for t, rows in report["summary"].items()}
        report["pass"] = {"met": all(d is not None and d["ci95"][0] > 0 for d in diffs.values()), "diffs": diffs}
        report["wall_s"] = time.perf_counter() - t0
        save_results(f"{name_of_run}_student", report)
    for task, rows in report["summary"].items():
        for name, r in rows.items():
            d = r.get("quickstart_minus_this")
            ci = f"  quickstart - this {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d else ""
            log(f"{task} {name}: {r['mean']:.4f} ± {r['std']:.4f} (n {r['n']}){ci}")
    log(f"pass: {report['pass']['met']}")


def candidates_under(config: Any, run: Any, budget: float, top: int = 5) -> dict[str, list[dict[str, Any]]]:
    """What the quickstart chose from: per band, this run's best trials under the budget (FLOPs as
    the search counts them) by the search's quality objective (each band scored on its own supernet)."""
    from nas.search.pareto import load_points
    from nas.search.study import study_name

    quality = config.search.objectives[0].name
    points, directions = load_points(config.storage_url, [study_name(config, s) for s in run.space.subspaces])
    sign = 1 if directions[quality] == "minimize" else -1
    by_band: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(points, key=lambda p: sign * p.objectives[quality]):
        if p.objectives["flops"] <= budget and len(by_band.setdefault(p.subspace, [])) < top:
            by_band[p.subspace].append({"arch_id": p.arch_id, quality: p.objectives[quality],
                                        "flops_ratio": p.objectives["flops"] / budget})
    return by_band


def weights_digest(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


if __name__ == "__main__":
    main()
