"""Measured latency of a stock HF model's forward pass on a named device."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from transformers import PreTrainedModel


@dataclass(frozen=True)
class Latency:
    median_ms: float
    spread_ms: float  # interquartile range
    runs: int
    batch: int
    seq_len: int
    device: str
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def measure_forward(model: PreTrainedModel, batch: int, seq_len: int, device: torch.device,
                    warmup: int = 2, repeats: int = 7) -> Latency:
    """Median and interquartile range of `repeats` timed forwards after `warmup` untimed ones."""
    model = model.to(device).eval()
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(input_ids=ids)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(input_ids=ids)
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Latency(statistics.median(times), q[2] - q[0], repeats, batch, seq_len, str(device), torch.get_num_threads())
