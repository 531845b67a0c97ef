"""One training step of the supernet with a sub-network active, against a standalone HF model of
the same shape trained with the same loss and batch, in the same run.

For each architecture both arms run in a fresh process (so peak memory is comparable): warm-up,
then the median wall time of forward + backward + AdamW step on the relation-KD loss against
the same precomputed teacher targets. Memory is the peak resident set size of that process on
CPU, or `torch.cuda.max_memory_allocated` on CUDA. Targets (issue 3): time ratio <= 1.10,
memory ratio <= 1.2. Writes benchmarks/results/supernet_step.json and prints a markdown table.

    python benchmarks/supernet_step.py [--teacher offline:minilm-l6] [--device cpu] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _measure(arm: str, teacher_id: str, arch_json: str, device: str, batch: int, seq_len: int, steps: int,
             queue: mp.Queue) -> None:
    import torch

    from search_spaces import Arch
    from supernet import teachers
    from supernet.config import LossConfig
    from supernet.distill import teacher_targets
    from supernet.losses import relation_loss
    from supernet.registry import build_supernet

    torch.manual_seed(0)
    dev = torch.device(device)
    arch = Arch.from_json(arch_json)
    model = teachers.load_teacher(teacher_id)
    teacher = build_supernet(model).to(dev).eval().requires_grad_(False)
    ids = torch.randint(1000, 20000, (batch, seq_len), device=dev)
    mask = torch.ones_like(ids)
    loss_cfg, heads = LossConfig(), 8
    with torch.no_grad():
        targets = teacher_targets(teacher, {"input_ids": ids, "attention_mask": mask}, loss_cfg, heads)

    if arm == "supernet":
        net = build_supernet(model).to(dev).train()
        net.set_active(arch)
        params = list(net.weights().values())

        def qkv():
            return net(ids, mask, capture_layer=-1).qkv
    else:
        donor = build_supernet(model)
        # eval(): no dropout, the same computation as the supernet (which has none); grads still flow.
        net = donor.extract(arch).to(dev).eval()
        del donor
        params = list(net.parameters())
        captured = {}
        last = net.encoder.layer[-1].attention.self if arch.family == "encoder" else net.model.layers[-1].self_attn
        mods = (last.query, last.key, last.value) if arch.family == "encoder" else (last.q_proj, last.k_proj, last.v_proj)
        for n, m in zip("qkv", mods):
            m.register_forward_hook(lambda _m, _i, out, n=n: captured.__setitem__(n, out))

        def qkv():
            net(input_ids=ids, attention_mask=mask)
            return captured["q"], captured["k"], captured["v"]
    del model, teacher
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 2):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = relation_loss(qkv(), targets.relations, heads)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    memory = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    queue.put({"step_s": statistics.median(times), "peak_bytes": memory})


def run_arm(*args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    import torch

    from search_spaces import SearchSpace, params
    from supernet import teachers

    space = SearchSpace.from_teacher(teachers.load_config(args.teacher).to_dict(), partitions=3)
    sub = space["small"]
    archs = [sub.largest, sub.sample(0, 1)[0], sub.smallest]
    rows = []
    for arch in archs:
        common = (args.teacher, arch.to_json(), args.device, args.batch, args.seq_len, args.steps)
        ours, base = run_arm("supernet", *common), run_arm("standalone", *common)
        rows.append({"arch_id": arch.id, "params": params(arch).total,
                     "supernet_step_s": ours["step_s"], "standalone_step_s": base["step_s"],
                     "time_ratio": ours["step_s"] / base["step_s"],
                     "supernet_peak_bytes": ours["peak_bytes"], "standalone_peak_bytes": base["peak_bytes"],
                     "memory_ratio": ours["peak_bytes"] / base["peak_bytes"]})
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    report = {"benchmark": "supernet_step", "teacher": args.teacher, "subspace": sub.name, "device": args.device,
              "device_name": device_name, "threads": torch.get_num_threads(), "batch": args.batch,
              "seq_len": args.seq_len, "torch": torch.__version__, "targets": {"time_ratio": 1.10, "memory_ratio": 1.2},
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    (RESULTS / f"supernet_step{suffix}.json").write_text(json.dumps(report, indent=2))
    print(f"| arch ({args.teacher}, {sub.name}, {args.device}, batch {args.batch}x{args.seq_len}) | params | supernet step | standalone step | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch_id']} | {r['params'] / 1e6:.2f}M | {r['supernet_step_s'] * 1e3:.1f} ms | "
              f"{r['standalone_step_s'] * 1e3:.1f} ms | {r['time_ratio']:.2f} | {r['memory_ratio']:.2f} |")


if __name__ == "__main__":
    main()
