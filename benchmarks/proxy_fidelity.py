"""Proxy fidelity where the choice is hard: within bands of nearly equal cost, does the engine's
score rank architectures as what a user would get for them does?

Per budget (1/2.7 and 1/8 of the teacher's FLOPs at 1 x seq_len), the band is every member of
the cost band (sub-space) holding the budget whose FLOPs lie within +-10% of it; `--per-band`
of them, evenly spread by parameter count, are compared. Scores:
- proxy: the engine's score, held-out relation-KD loss with weights inherited from the band's
  trained supernet (what the search ranks by);
- step0: the same loss from the supernet before training (the importance-ordered teacher slice);
- proxy_K (for each K of `--proxy-steps`): the engine's short-training proxy (`search.proxy_steps:
  K`): the inherited sub-network distilled K steps on its own, then the same loss;
- params, flops: what a heuristic without weights would rank by (bigger = better).
Ground truth per architecture, what a user gets for it without the supernet: the teacher's slice
in the same importance order, distilled standalone (`nas distill --importance-order`, same loss
and data) for 2B steps, then fine-tuned on one task (test accuracy). The same architecture is
also distilled for B steps: the tau between the held-out relation-KD rankings at B and 2B shows
whether 2B is long enough for the ranking to have settled (target >= 0.8).

Fidelity = Kendall tau within the band between each score and the ground truth (losses negated
so that higher is better for every score), with a bootstrap 95% interval over architectures.
Pass rule, fixed before the run: in every band, the proxy's tau >= 0.6 and above the tau of
params, flops and step0. Depth against width: the tau of the layer count with the ground truth,
with the proxy and with step0, says whether deep-and-narrow or shallow-and-wide wins and whether
each score sees it.

Shares --work with benchmarks/students.py (the same run, so the same trained supernets, tasks and
distillation text); every standalone student and fine-tuning result is cached there, and the
results JSON is rewritten after each architecture. Writes benchmarks/results/proxy_fidelity.json.

    python benchmarks/proxy_fidelity.py [--work runs/bench-students] [--ratios 2.7 8] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from evidence import log, save_results
from scipy.stats import kendalltau
from students import add_shared_run_args, make_tasks, run_config

SCORES = ("proxy", "step0", "params", "flops")  # the pass rule's; proxy_K scores are reported beside


def tau_with_interval(score: list[float], truth: list[float], boot: int, seed: int = 0) -> dict[str, Any]:
    """Kendall tau and its bootstrap 95% interval (architectures resampled with replacement)."""
    x, y = np.asarray(score), np.asarray(truth)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(boot):
        i = rng.integers(0, len(x), len(x))
        t = kendalltau(x[i], y[i]).statistic
        if np.isfinite(t):
            taus.append(t)
    return {"tau": float(kendalltau(x, y).statistic), "ci95": [float(np.percentile(taus, 2.5)),
                                                               float(np.percentile(taus, 97.5))]}


def tau_difference(a: list[float], b: list[float], truth: list[float], boot: int, seed: int = 0) -> dict[str, Any]:
    """tau(a, truth) - tau(b, truth) with a paired bootstrap 95% interval: the same resampled
    architectures score both, so the interval says whether `a` ranks better than `b`."""
    x, y, t = np.asarray(a), np.asarray(b), np.asarray(truth)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(boot):
        i = rng.integers(0, len(t), len(t))
        d = kendalltau(x[i], t[i]).statistic - kendalltau(y[i], t[i]).statistic
        if np.isfinite(d):
            diffs.append(d)
    point = kendalltau(x, t).statistic - kendalltau(y, t).statistic
    return {"diff": float(point), "ci95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]}


def spread(members: list[Any], n: int, key: Any) -> list[Any]:
    """`n` members evenly spread by `key` (all of them when there are no more than `n`)."""
    ordered = sorted(members, key=key)
    if len(ordered) <= n:
        return ordered
    return [ordered[i] for i in np.linspace(0, len(ordered) - 1, n).round().astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-students"))
    parser.add_argument("--ratios", type=float, nargs="+", default=[2.7, 8.0])
    parser.add_argument("--per-band", type=int, default=16)
    parser.add_argument("--band", type=float, default=0.1, help="half-width of a band, as a fraction of the budget")
    parser.add_argument("--steps", type=int, default=30, help="B: standalone students are distilled B and 2B steps")
    parser.add_argument("--task", default="rt", help="the fine-tuning task of the ground truth (imdb or rt)")
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (one for every arch)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--proxy-steps", type=int, nargs="*", default=[10, 30],
                        help="K: also score by the short-training proxy (search.proxy_steps: K)")
    add_shared_run_args(parser)  # so that the students benchmark's supernets are reused
    args = parser.parse_args()

    import torch

    from nas.config import parse_config
    from nas.distill import distill
    from nas.finetune import finetune
    from nas.run import load_trained_supernet, open_run, training_setup
    from nas.search.evaluate import held_out_targets
    from nas.train import run_train
    from search_spaces import flops, params
    from supernet.distill import evaluate
    from supernet.hf_models import MODEL_CLASS
    from supernet.registry import supernet_class
    from supernet.train import train_fixed

    torch.manual_seed(0)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sizes = tuple(int(x) for x in args.split.split(","))
    tasks, corpus = make_tasks(work, sizes)  # type: ignore[arg-type]
    config = parse_config(run_config(work, corpus, args.teacher, args.seq_len, args.supernet_steps, args.trials))
    run = open_run(config, save_config=False)
    teacher = run.space.teacher
    cost = lambda a: flops(a, 1, args.seq_len)  # noqa: E731
    device = torch.device("cpu")
    setup = training_setup(run, device)  # data, teacher, importance: as the supernets were cut
    batches = setup.data.held_out_batches(config.train.batch_size, 4)
    targets = held_out_targets(setup.teacher, batches, config.train.loss, run.relation_heads)

    def kd(net: Any, arch: Any) -> float:
        return evaluate(net, arch, batches, targets, config.train.loss, run.relation_heads)["relation_kd"]

    def kd_of_directory(directory: Path, arch: Any) -> float:
        model = MODEL_CLASS[arch.family].from_pretrained(directory)
        return kd(supernet_class(run.teacher_config.model_type)(model, "first").eval(), arch)

    cache_path = work / "proxy-cache.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    report: dict[str, Any] = {
        "benchmark": "proxy_fidelity",
        "teacher": args.teacher,
        "args": vars(args) | {"work": str(work)},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "pass_rule": "every band: proxy tau >= 0.6 and above the tau of params, flops and step0",
        "bands": {},
    }

    for ratio in args.ratios:
        name = f"1-{ratio:g}"
        budget = cost(teacher) / ratio
        sub = run.space.band_holding(budget, cost)
        members = [a for a in sub if abs(cost(a) / budget - 1) <= args.band]
        archs = spread(members, args.per_band, key=lambda a: (params(a).total, a.id))
        band: dict[str, Any] = {"budget_flops": budget, "subspace": sub.name, "members_in_band": len(members),
                                "compared": len(archs), "rows": []}
        report["bands"][name] = band
        log(f"band {name}: {sub.name}, {len(members)} members within {args.band:.0%}, comparing {len(archs)}")

        s = time.perf_counter()
        run_train(config, subspaces=[sub.name], progress=False)  # cached: trained once, shared with students
        trained, _ = load_trained_supernet(run, sub.name, device)
        untrained = setup.supernet(sub).eval()
        band["supernet_s"] = time.perf_counter() - s

        for arch in archs:
            key = f"{name}/{arch.id}"
            row = cache.get(key, {})
            row.update(arch_id=arch.id, num_layers=arch.num_layers, hidden=arch.hidden_size,
                       ffn=arch.intermediate_size, params=params(arch).total, flops=cost(arch))
            if "proxy" not in row:
                row["proxy"] = kd(trained, arch)
                row["step0"] = kd(untrained, arch)
            for k in args.proxy_steps:  # as DistilledEvaluator scores a candidate
                if f"proxy_{k}" not in row:
                    torch.manual_seed(0)
                    student, _ = train_fixed(arch, trained, setup.teacher, setup.data, config.train,
                                             run.relation_heads, None, device, k)
                    row[f"proxy_{k}"] = kd(student.eval(), arch)
            t = time.perf_counter()
            for steps in (args.steps, 2 * args.steps):
                if f"kd_{steps}" not in row:
                    out = work / "standalone" / f"{arch.id}-{steps}"
                    distill(config, out, steps, arch=arch, layers=run.space.layer_policy, importance=True)
                    row[f"kd_{steps}"] = kd_of_directory(out, arch)
            if "accuracy" not in row:
                r = finetune(str(work / "standalone" / f"{arch.id}-{2 * args.steps}"), str(tasks[args.task]),
                             "text", "label", lr=args.lr, seed=0, epochs=args.epochs, seq_len=args.seq_len,
                             batch_size=32, split_sizes=sizes, split_seed=0,
                             output_dir=work / "ft" / f"proxy-{args.task}-{arch.id}")
                row["accuracy"], row["dev_accuracy"] = r.metrics["test_accuracy"], r.metrics["dev_accuracy"]
                row["ground_truth_s"] = time.perf_counter() - t
            cache[key] = row
            cache_path.write_text(json.dumps(cache, indent=2))
            band["rows"].append(row)
            log(f"{key}: proxy {row['proxy']:.4f} step0 {row['step0']:.4f} kd@{2 * args.steps} "
                f"{row[f'kd_{2 * args.steps}']:.4f} accuracy {row['accuracy']:.4f}")
            save_results("proxy_fidelity", report)
        band.update(summarise(band["rows"], args.steps, args.boot, args.proxy_steps))
        save_results("proxy_fidelity", report)

    report["pass"] = {
        name: b["fidelity"]["proxy"]["tau"] >= 0.6
        and all(b["fidelity"]["proxy"]["tau"] > b["fidelity"][s]["tau"] for s in SCORES if s != "proxy")
        for name, b in report["bands"].items()
    }
    save_results("proxy_fidelity", report)
    print(table(report))


def summarise(rows: list[dict[str, Any]], steps: int, boot: int, proxy_steps: list[int]) -> dict[str, Any]:
    """Every score's tau with the ground truth, the ranking's stability from B to 2B steps, and
    depth against width."""
    truth = [r["accuracy"] for r in rows]
    higher_is_better = {"proxy": [-r["proxy"] for r in rows], "step0": [-r["step0"] for r in rows],
                        "params": [r["params"] for r in rows], "flops": [r["flops"] for r in rows]}
    higher_is_better |= {f"proxy_{k}": [-r[f"proxy_{k}"] for r in rows] for k in proxy_steps}
    layers = [r["num_layers"] for r in rows]
    return {
        "fidelity": {s: tau_with_interval(v, truth, boot) for s, v in higher_is_better.items()},
        # Is a proxy's lead over the parameter count beyond what 16 architectures can show?
        "minus_params": {s: tau_difference(v, higher_is_better["params"], truth, boot)
                         for s, v in higher_is_better.items() if s.startswith("proxy")},
        # Also against the standalone students' own distillation loss (before any task).
        "fidelity_to_kd": {s: tau_with_interval(v, [-r[f"kd_{2 * steps}"] for r in rows], boot)
                           for s, v in higher_is_better.items()},
        "stability_b_2b": tau_with_interval([r[f"kd_{steps}"] for r in rows],
                                            [r[f"kd_{2 * steps}"] for r in rows], boot),
        "depth": {"ground_truth": tau_with_interval(layers, truth, boot),
                  "proxy": tau_with_interval(layers, higher_is_better["proxy"], boot),
                  "step0": tau_with_interval(layers, higher_is_better["step0"], boot)},
        "accuracy_range": [min(truth), max(truth)],
    }


def table(report: dict[str, Any]) -> str:
    extra = [f"proxy_{k}" for k in report["args"]["proxy_steps"]]
    lines = ["| band | n | proxy | step0 (untrained) | params | FLOPs | " + " | ".join(extra)
             + " | stability B vs 2B | pass |", "|---" * (8 + len(extra)) + "|"]
    for name, b in report["bands"].items():
        if "fidelity" not in b:
            continue
        f = b["fidelity"]
        cell = lambda t: f"{t['tau']:+.2f} [{t['ci95'][0]:+.2f}, {t['ci95'][1]:+.2f}]"  # noqa: E731
        lines.append(f"| {name} ({b['subspace']}) | {b['compared']} | "
                     + " | ".join(cell(f[s]) for s in (*SCORES, *extra))
                     + f" | {cell(b['stability_b_2b'])} | {'yes' if report.get('pass', {}).get(name) else 'no'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
