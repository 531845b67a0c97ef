"""Forward KL from the teacher cache: read as stored (top-k) against rebuilt dense, per step.

The decoder cache keeps the teacher's top-k log-probabilities per token. Training used to rebuild
them into a dense (B, T, V) tensor (V = 49,152 for SmolLM2) and run forward KL on it; it now
computes the same KL from the k kept entries and the tail (`losses.forward_kl_top_k`). Both arms
run in this process, interleaved, on the same tensors:
- loss: the KL and its backward alone, for k = 64 (the quickstart's), 256 and 1024 (the dense arm
  rebuilds the teacher's tensor each call, as a one-network step did; a supernet's sandwich step
  rebuilt it once per batch for all its sub-networks, so there the saving per sub-network is less);
- step: a whole training step of the decoder quickstart's chosen student shape (10 layers x 576,
  9 heads, 3 KV heads, FFN 1536, SmolLM2's vocabulary; a stock `LlamaForCausalLM` with random
  weights, since the time does not depend on them): forward, forward KL plus the next-token loss
  (the packaged decoder config's loss), backward, AdamW step.
Reported: every repeat's wall time, the median of each arm, the ratio of the medians top-k / dense
and the range of the per-repeat ratios; for the loss alone the value of both (equal up to
rounding). Target, fixed before the first run: the step's ratio <= 0.85 at k = 64.

    python benchmarks/cached_kl.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
from evidence import save_results
from torch import Tensor
from transformers import LlamaConfig, LlamaForCausalLM

from supernet.losses import TopKLogProbs, forward_kl, forward_kl_top_k, lm_loss
from supernet.teacher_cache import top_k_log_probs

VOCAB = 49152  # SmolLM2's
STEP_TARGET = 0.85


def dense_kl(student: Tensor, teacher: TopKLogProbs, mask: Tensor) -> Tensor:
    return forward_kl(student, teacher.dense(), mask)  # what training did before


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(arms: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each arm per repeat, the arms alternating (and swapping which goes first each
    repeat) so machine noise and cache warmth fall on both."""
    for fn in arms.values():  # warm-up
        fn()
    names = list(arms)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(timed(arms[name]))
    return times


def summary(times: dict[str, list[float]]) -> dict[str, object]:
    median = {name: statistics.median(t) for name, t in times.items()}
    return {"seconds": median, "samples": times, "ratio": median["top_k"] / median["dense"],
            # the spread of the ratio over repeats, each repeat's pair divided
            "ratio_range": [min(a / b for a, b in zip(times["top_k"], times["dense"])),
                            max(a / b for a, b in zip(times["top_k"], times["dense"]))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T = args.batch, args.seq_len
    mask = torch.ones(B, T - 1)
    teacher_logits = torch.randn(B, T, VOCAB) * 4
    report: dict[str, object] = {"benchmark": "cached_kl", "args": vars(args),
                                 "machine": f"{platform.machine()}, {args.threads} threads", "loss": {}}

    # -- the loss and its backward alone ----------------------------------------------------
    student_logits = torch.randn(B, T - 1, VOCAB)
    for k in (64, 256, 1024):
        teacher = TopKLogProbs(*top_k_log_probs(teacher_logits, k), VOCAB)[:, :-1]
        values = {}

        def arm(kl: Callable[[Tensor, TopKLogProbs, Tensor], Tensor], name: str) -> Callable[[], object]:
            def run() -> None:
                student = student_logits.clone().requires_grad_()
                loss = kl(student, teacher, mask)
                loss.backward()
                values[name] = float(loss.detach())
            return run

        result = summary(interleaved({"dense": arm(dense_kl, "dense"), "top_k": arm(forward_kl_top_k, "top_k")},
                                     args.repeats))
        report["loss"][f"k{k}"] = result | {"value": values}
        seconds = result["seconds"]
        print(f"loss, k={k}: dense {seconds['dense']:.3f} s, top-k {seconds['top_k']:.3f} s, "
              f"ratio {result['ratio']:.2f} (per repeat {result['ratio_range']}); values {values}")

    # -- a whole training step of the quickstart's student ------------------------------------
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=576, intermediate_size=1536, num_hidden_layers=10,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                         max_position_embeddings=2048)
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(0, VOCAB, (B, T))
    teacher = TopKLogProbs(*top_k_log_probs(teacher_logits, 64), VOCAB)[:, :-1]

    def step(kl: Callable[[Tensor, TopKLogProbs, Tensor], Tensor]) -> Callable[[], object]:
        def run() -> None:
            logits = model(input_ids=ids).logits
            loss = kl(logits[:, :-1], teacher, mask) + lm_loss(logits, ids, torch.ones(B, T))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return run

    result = summary(interleaved({"dense": step(dense_kl), "top_k": step(forward_kl_top_k)}, args.repeats))
    seconds, ratio = result["seconds"], result["ratio"]
    report["step"] = {"student": "10 layers x 576, 9 heads, 3 KV heads, FFN 1536, vocabulary 49152", "k": 64,
                      **result, "target": STEP_TARGET, "pass": ratio <= STEP_TARGET}
    verdict = "pass" if ratio <= STEP_TARGET else "FAIL"
    print(f"step, k=64: dense {seconds['dense']:.2f} s, top-k {seconds['top_k']:.2f} s, ratio {ratio:.2f} "
          f"(per repeat {result['ratio_range']}; target <= {STEP_TARGET}: {verdict})")
    save_results("cached_kl", report)


if __name__ == "__main__":
    main()
