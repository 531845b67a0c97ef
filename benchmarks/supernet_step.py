"""A supernet training step against the same network trained as a standalone HF model.

Every sub-space's SuperLM holds only its hull (the layers its members run, the widest widths they
use). For each partition scheme (cost bands, the default; AutoDistil's coupled boxes) and each
sub-space, at its largest, median (by parameters) and smallest member, both arms run in a fresh
process: forward + backward + AdamW step on the relation-KD loss against the same precomputed
teacher targets, same batch. Reported per row:
- time: median step wall time, supernet / standalone;
- training state: bytes of weights + gradients + AdamW's two moments, supernet / standalone;
- step memory: the peak resident memory measured during the steps minus that just before them
  (a sampling thread on CPU; `torch.cuda.max_memory_allocated` over the steps on CUDA), so the
  libraries and set-up copies of the teacher are not counted;
and one sandwich step (largest, smallest, two random members) against the same four networks
trained standalone one after the other.

Targets (fixed before the run): time <= 1.05 and training-state memory <= 1.2 at every
sub-space's largest member; <= 1.3 for both at the smallest.

    python benchmarks/supernet_step.py [--teacher offline:minilm-l6] [--device cpu] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import threading
import time

from evidence import save_results

TARGETS = {"largest": {"time_ratio": 1.05, "state_ratio": 1.2}, "smallest": {"time_ratio": 1.3, "state_ratio": 1.3}}


class PeakSampler:
    """Peak resident memory above a baseline, sampled every millisecond on a thread (torch's
    kernels release the GIL, so the thread sees the steps' allocations)."""

    def __init__(self) -> None:
        import psutil

        self.process, self.peak, self.base = psutil.Process(), 0, 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakSampler:
        self.base = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def delta(self) -> int:
        return self.peak - self.base


def _measure(arm: str, teacher_id: str, shape_json: str, policy: str, archs_json: list[str], device: str,
             batch: int, seq_len: int, steps: int, queue: mp.Queue) -> None:
    import torch

    from search_spaces import Arch, SupernetShape
    from supernet import teachers
    from supernet.config import LossConfig
    from supernet.distill import teacher_targets
    from supernet.losses import relation_loss
    from supernet.registry import build_supernet

    torch.manual_seed(0)
    dev = torch.device(device)
    archs = [Arch.from_json(a) for a in archs_json]
    model = teachers.load_teacher(teacher_id)
    teacher = build_supernet(model, policy).to(dev).eval().requires_grad_(False)
    ids = torch.randint(1000, 20000, (batch, seq_len), device=dev)
    mask = torch.ones_like(ids)
    loss_cfg, heads = LossConfig(), 8
    with torch.no_grad():
        targets = teacher_targets(teacher, {"input_ids": ids, "attention_mask": mask}, loss_cfg, heads)

    if arm == "supernet":  # one hull supernet, the archs active in turn
        net = teacher.hull(SupernetShape.from_dict(json.loads(shape_json))).requires_grad_(True).train()
        groups = [(list(net.weights().values()), [(arch, _supernet_qkv(net, arch, ids, mask)) for arch in archs])]
    else:  # one standalone HF model (and optimizer) per arch, trained one after the other
        groups = []
        for arch in archs:
            student = teacher.extract(arch).to(dev).eval().requires_grad_(True)  # eval: no dropout, as the supernet
            groups.append((list(student.parameters()), [(arch, _hf_qkv(student, arch, ids, mask))]))
    del model, teacher
    optimizers = [torch.optim.AdamW(params, lr=1e-5) for params, _ in groups]

    def step() -> None:
        for optimizer, (_, members) in zip(optimizers, groups):
            optimizer.zero_grad(set_to_none=True)
            for _, qkv in members:
                (relation_loss(qkv(), targets.relations, heads) / len(members)).backward()
            optimizer.step()

    for _ in range(2):  # warm-up; also creates AdamW's state
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    times = []
    with PeakSampler() as sampler:
        for _ in range(steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    step_bytes = torch.cuda.max_memory_allocated() - before if dev.type == "cuda" else sampler.delta
    state = 0
    for optimizer, (params, _) in zip(optimizers, groups):
        state += sum(p.numel() * p.element_size() for p in params)  # weights
        state += sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
        state += sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                     if torch.is_tensor(t) and t.dim() > 0)
    queue.put({"step_s": statistics.median(times), "state_bytes": state, "step_bytes": step_bytes})


def _supernet_qkv(net, arch, ids, mask):
    def qkv():
        net.set_active(arch)
        return net(ids, mask, capture_layer=-1).qkv
    return qkv


def _hf_qkv(model, arch, ids, mask):
    captured = {}
    last = model.encoder.layer[-1].attention.self if arch.family == "encoder" else model.model.layers[-1].self_attn
    mods = (last.query, last.key, last.value) if arch.family == "encoder" else (last.q_proj, last.k_proj, last.v_proj)
    for n, m in zip("qkv", mods):
        m.register_forward_hook(lambda _m, _i, out, n=n: captured.__setitem__(n, out))

    def qkv():
        model(input_ids=ids, attention_mask=mask)
        return captured["q"], captured["k"], captured["v"]
    return qkv


def run_arm(*args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def compare(label: str, shape, policy: str, archs, args) -> dict:
    common = (args.teacher, json.dumps(shape.to_dict()), policy, [a.to_json() for a in archs], args.device,
              args.batch, args.seq_len, args.steps)
    ours, base = run_arm("supernet", *common), run_arm("standalone", *common)
    return {"member": label, "arch_ids": [a.id for a in archs], "supernet_step_s": ours["step_s"],
            "standalone_step_s": base["step_s"], "time_ratio": ours["step_s"] / base["step_s"],
            "supernet_state_bytes": ours["state_bytes"], "standalone_state_bytes": base["state_bytes"],
            "state_ratio": ours["state_bytes"] / base["state_bytes"],
            "supernet_step_bytes": ours["step_bytes"], "standalone_step_bytes": base["step_bytes"],
            "step_memory_ratio": ours["step_bytes"] / max(1, base["step_bytes"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="offline:minilm-l6")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--schemes", default="cost,box")
    args = parser.parse_args()

    import torch

    from search_spaces import SearchSpace, params
    from supernet import teachers

    hf_config = teachers.load_config(args.teacher).to_dict()
    teacher_params = params(SearchSpace.from_teacher(hf_config, partitions=1).teacher).total
    rows, t_start = [], time.perf_counter()
    for scheme in args.schemes.split(","):
        space = SearchSpace.from_teacher(hf_config, partitions=3, partition_by=scheme)
        for sub in space.subspaces:
            shape = sub.supernet_shape
            by_size = sorted(sub.archs(), key=lambda a: params(a).total)
            members = {"largest": sub.largest, "median": by_size[len(by_size) // 2], "smallest": sub.smallest}
            for label, arch in members.items():
                rows.append({"scheme": scheme, "subspace": sub.name, "members": sub.size,
                             "hull_params": params(shape.arch).total, "teacher_params": teacher_params,
                             "params": params(arch).total,
                             **compare(label, shape, space.layer_policy, [arch], args)})
            sandwich = sub.sandwich(0, 2)
            rows.append({"scheme": scheme, "subspace": sub.name, "members": sub.size,
                         "hull_params": params(shape.arch).total, "teacher_params": teacher_params,
                         "params": sum(params(a).total for a in sandwich),
                         **compare("sandwich", shape, space.layer_policy, sandwich, args)})
            print(json.dumps({k: rows[-1][k] for k in ("scheme", "subspace", "time_ratio", "state_ratio")}), flush=True)
    cpu_name = platform.processor() or platform.machine()
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name
    report = {
        "benchmark": "supernet_step",
        "teacher": args.teacher,
        "device": args.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "torch": torch.__version__,
        "targets": TARGETS,
        "wall_s": time.perf_counter() - t_start,
        "rows": rows,
    }
    suffix = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    save_results(f"supernet_step{suffix}", report)
    print(table(report))


def table(report: dict) -> str:
    lines = [
        "| scheme | sub-space (members) | hull / teacher params | member | time ratio | training-state ratio "
        "| step-memory ratio | target met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        target = report["targets"].get(r["member"])
        met = (
            "-"
            if target is None
            else "yes"
            if r["time_ratio"] <= target["time_ratio"] and r["state_ratio"] <= target["state_ratio"]
            else "no"
        )
        lines.append(
            f"| {r['scheme']} | {r['subspace']} ({r['members']}) | {r['hull_params'] / 1e6:.1f}M / "
            f"{r['teacher_params'] / 1e6:.1f}M | {r['member']} ({r['params'] / 1e6:.1f}M) | "
            f"{r['time_ratio']:.2f} | {r['state_ratio']:.2f} | {r['step_memory_ratio']:.2f} | {met} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
