"""Latency predictor accuracy on held-out architectures.

For each offline teacher's derived space: measure a seeded sample of architectures on this
device (stock HF models, warm-up then repeated timed runs, median), fit the predictor on a
training part, and report on the held-out part the mean absolute percentage error and Kendall's
rank correlation of predicted against measured latency. Targets (issue 5): MAPE <= 5% and
Kendall tau >= 0.9. Writes benchmarks/results/latency_predictor[_cuda].json and prints a table.

    python benchmarks/latency_predictor.py [--device cpu] [--train 40] [--test 20] [--seq-len 128]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from evidence import save_results
from scipy.stats import kendalltau

from nas.latency import LatencyPredictor, device_description, measure_round_robin
from search_spaces import SearchSpace
from supernet import teachers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="round-robin passes (see nas.latency)")
    parser.add_argument("--teachers", nargs="+", default=["offline:minilm-l6", "offline:smollm2-135m"])
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for teacher_id in args.teachers:
        config = teachers.load_config(teacher_id)
        space = SearchSpace.from_teacher(config.to_dict(), partitions=3)
        archs = space.archs()
        rng = np.random.default_rng(0)
        chosen = [archs[i] for i in rng.choice(len(archs), size=args.train + args.test, replace=False)]
        ms = np.array(
            [
                m.median_ms
                for m in measure_round_robin(
                    chosen,
                    config,
                    args.batch,
                    args.seq_len,
                    device,
                    repeats=args.repeats,
                    rounds=args.rounds,
                    decode=False,
                )
            ]
        )
        train, test = slice(0, args.train), slice(args.train, None)
        predictor = LatencyPredictor.fit(
            chosen[train], ms[train], args.batch, args.seq_len, "fp32", device_description(device)
        )
        predicted = np.array([predictor.predict_ms(a) for a in chosen[test]])
        mape = float(np.mean(np.abs(predicted - ms[test]) / ms[test]))
        tau = float(kendalltau(predicted, ms[test]).statistic)
        rows.append(
            {
                "teacher": teacher_id,
                "space_size": len(archs),
                "train": args.train,
                "test": args.test,
                "held_out_mape": mape,
                "kendall_tau": tau,
                "train_mape": predictor.train_mape,
                "measured_ms_range": [float(ms.min()), float(ms.max())],
            }
        )
    report = {
        "benchmark": "latency_predictor",
        "device": device_description(device),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "targets": {"mape": 0.05, "kendall_tau": 0.9},
        "rows": rows,
    }
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    save_results(f"latency_predictor{suffix}", report)
    print(
        f"| teacher space ({report['device']['name']}, {args.device}, batch {args.batch}x{args.seq_len}) | "
        f"train/test | measured range | held-out MAPE | Kendall tau |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["measured_ms_range"]
        print(
            f"| {r['teacher']} | {r['train']}/{r['test']} | {lo:.1f}-{hi:.1f} ms | {r['held_out_mape']:.1%} | "
            f"{r['kendall_tau']:.3f} |"
        )


if __name__ == "__main__":
    main()
