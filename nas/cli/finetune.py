"""`nas finetune`: its parser and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.args import floats, ints
from nas.config import FINETUNE_EPOCHS, FINETUNE_LRS


def add(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser("finetune", help="fine-tune an exported student (or a teacher) with the HF Trainer",
                               description="Classification (accuracy, macro-F1) or causal-LM (perplexity) on a "
                                           "seeded 80/10/10 split; results go next to the student and onto its trial.")
    tune.add_argument("model", help="an exported student directory, or a teacher id such as offline:minilm-l6")
    tune.add_argument("--data", required=True, help="a csv/json/jsonl/txt file, a dataset id, or offline:movie-reviews")
    tune.add_argument("--text-column", default="text")
    tune.add_argument("--label-column", default="label")
    tune.add_argument("--task", choices=["classification", "causal-lm"], default="classification")
    tune.add_argument("--epochs", type=float, default=FINETUNE_EPOCHS)
    tune.add_argument("--seq-len", type=int, default=128)
    tune.add_argument("--batch-size", type=int, default=16)
    tune.add_argument("--lr", type=floats, default=list(FINETUNE_LRS),
                      help="a learning rate, or several (comma-separated) to sweep and choose on dev "
                           f"(default: {','.join(f'{x:g}' for x in FINETUNE_LRS)})")
    tune.add_argument("--max-examples", type=int, help="use a seeded sample of this many rows")
    tune.add_argument("--seed", type=int, default=0, help="training seed (head initialisation, data order)")
    tune.add_argument("--split-seed", type=int, default=0, help="seed of the train/dev/test split")
    tune.add_argument("--split", type=ints, help="TRAIN,DEV,TEST row counts (default: 80/10/10 of the data)")
    tune.add_argument("--teacher", help="a fine-tuned teacher directory (see --save-to): distil its soft labels")
    tune.add_argument("--kd-temperature", type=float, default=2.0)
    tune.add_argument("--kd-weight", type=float, default=0.5, help="weight of the soft-label loss, in [0, 1]")
    tune.add_argument("--save-to", type=Path, help="save the fine-tuned model here (e.g. a teacher for --teacher)")
    tune.add_argument("--storage", help="storage URL of the student's trial (default: the one it was exported from)")
    tune.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> None:
    from nas.finetune import finetune

    r = finetune(args.model, args.data, args.text_column, args.label_column, args.task, epochs=args.epochs,
                 seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr, max_examples=args.max_examples,
                 seed=args.seed, split_seed=args.split_seed, split_sizes=tuple(args.split) if args.split else None,
                 teacher=args.teacher, kd_temperature=args.kd_temperature, kd_weight=args.kd_weight,
                 save_to=args.save_to, storage=args.storage)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
    print(f"{r.model}: {r.task}, {r.train_examples} train / {r.test_examples} test examples, lr {r.lr:g} "
          f"(dev by lr: {r.dev_by_lr}): {metrics}")
