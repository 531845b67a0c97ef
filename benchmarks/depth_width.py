"""Depth dropping against width slicing: what each cut does to the weights a student inherits,
before and after the supernet's training.

From the teacher, one dimension at a time is cut along the space's own choices, every other
dimension kept at the teacher's size: the number of layers (depth; the space's layer policy
picks which layers stay), the hidden size with its heads (width), the FFN width. Each such member
is scored by the search's proxy, held-out relation-KD loss against the teacher (lower is better),
with the weights the supernet of the band holding the budget hands it:
- step 0: before any training (the importance-ordered teacher slice, as the engine cuts it: FFN
  neurons reordered, heads in the teacher's order where relations are compared);
- step 0 with the heads permuted by importance too, and with no reordering at all: what the head
  order and the neuron order each do to the inherited weights;
- trained: after the band's sandwich training (the students benchmark's supernet: same --work).
Beside it, the member's FLOPs as a fraction of the teacher's, and whether it lies in the band (a
member outside it is still a slice of the same weights, but the sandwich never sampled it).

The question it answers: at equal FLOPs, which cut costs the inherited weights least, and does
the supernet's training change that answer. The fine-tuned answer for three members at 1/2.7 is
the students benchmark's (layer_drop is the depth cut, largest nearly the FFN cut).

    python benchmarks/depth_width.py [--work runs/bench-students] [--ratio 2.7]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

from evidence import log, save_results
from students import add_shared_run_args, make_tasks, run_config

AXES = {"depth": "num_layers", "width": "hidden_size", "ffn": "intermediate_size"}


def one_cut_members(space: Any, teacher: Any) -> dict[str, list[Any]]:
    """Per axis, the members that differ from the teacher in that dimension alone (width takes
    its heads with it: the space ties the head count to the hidden size)."""
    kept = {axis: [d for a, d in AXES.items() if a != axis] for axis in AXES}
    out: dict[str, list[Any]] = {}
    for axis, dim in AXES.items():
        members = [a for a in space if all(getattr(a, d) == getattr(teacher, d) for d in kept[axis])
                   and (axis == "width" or a.num_heads == teacher.num_heads)]
        out[axis] = sorted(members, key=lambda a: -getattr(a, dim))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-students"))
    parser.add_argument("--ratio", type=float, default=2.7, help="the band holding teacher FLOPs / ratio")
    add_shared_run_args(parser)  # so that the students benchmark's supernets are reused
    args = parser.parse_args()

    import torch

    from nas.config import parse_config
    from nas.run import fresh_supernet, load_trained_supernet, open_run, supernet_shape, training_setup
    from nas.search.evaluate import held_out_targets
    from nas.train import run_train
    from search_spaces import flops, params
    from supernet.distill import evaluate

    torch.manual_seed(0)
    t0 = time.perf_counter()
    work = args.work.resolve()
    sizes = tuple(int(x) for x in args.split.split(","))
    _, corpus = make_tasks(work, sizes)  # type: ignore[arg-type]
    config = parse_config(run_config(work, corpus, args.teacher, args.seq_len, args.supernet_steps, args.trials))
    run = open_run(config, save_config=False)
    teacher = run.space.teacher
    cost = lambda a: flops(a, 1, args.seq_len)  # noqa: E731
    sub = run.space.band_holding(cost(teacher) / args.ratio, cost)
    run_train(config, subspaces=[sub.name], progress=False)  # cached: the students benchmark's supernet
    device = torch.device("cpu")
    setup = training_setup(run, device)  # data, teacher, importance: as the supernet was cut
    trained, _ = load_trained_supernet(run, sub.name, device)
    untrained = {  # the engine's cut, and the two alternatives
        "step0": setup.supernet(sub).eval(),
        "step0_heads_permuted": fresh_supernet(setup.teacher, setup.importance, supernet_shape(run, sub),
                                               heads=True).eval(),
        "step0_no_reorder": fresh_supernet(setup.teacher, None, supernet_shape(run, sub)).eval(),
    }
    # The search's own held-out batches: the score is exactly what the search ranks by.
    batches = setup.data.held_out_batches(config.train.batch_size, config.search.eval_batches)
    targets = held_out_targets(setup.teacher, batches, config.train.loss, run.relation_heads)

    def kd(net: Any, arch: Any) -> float:
        return evaluate(net, arch, batches, targets, config.train.loss, run.relation_heads)["relation_kd"]

    rows: dict[str, list[dict[str, Any]]] = {}
    for axis, members in one_cut_members(run.space, teacher).items():
        rows[axis] = []
        for arch in members:
            rows[axis].append({
                "arch_id": arch.id, AXES[axis]: getattr(arch, AXES[axis]),
                "flops_fraction": cost(arch) / cost(teacher), "params": params(arch).total,
                "in_band": arch in sub, **{name: kd(net, arch) for name, net in untrained.items()},
                "trained": kd(trained, arch),
            })
            r = rows[axis][-1]
            log(f"{axis} {arch.id}: FLOPs {r['flops_fraction']:.2f}, "
                f"step 0 {r['step0']:.3f}, trained {r['trained']:.3f}")
    report = {
        "benchmark": "depth_width",
        "teacher": args.teacher,
        "band": sub.name,
        "supernet_steps": args.supernet_steps,
        "args": vars(args) | {"work": str(work)},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
    }
    save_results("depth_width", report)
    print(table(report))


def table(report: dict[str, Any]) -> str:
    lines = ["| cut | member | FLOPs / teacher | in band | step 0, heads permuted | step 0, no reordering "
             "| step 0 (the engine's cut) | trained |", "|---|---|---|---|---|---|---|---|"]
    for axis, rows in report["rows"].items():
        for r in rows:
            lines.append(f"| {axis} {r[AXES[axis]]} | {r['arch_id']} | {r['flops_fraction']:.2f} | "
                         f"{'yes' if r['in_band'] else 'no'} | {r['step0_heads_permuted']:.3f} | "
                         f"{r['step0_no_reorder']:.3f} | {r['step0']:.3f} | {r['trained']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
