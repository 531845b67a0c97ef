"""Latency: measured on a named device, stored as a table per device, predicted by a fitted model.

Measurement times the stock HF model of an architecture (random weights: latency does not depend
on their values): warm-up, then repeated runs, median and interquartile range, with the device
name, torch version, threads, dtype, batch and sequence length recorded. For encoders the timed
call is the forward pass; for decoders it is the prefill (forward over the prompt), and the mean
per-token decode time with a KV cache is recorded beside it. `latency_ms` means that forward /
prefill time everywhere.

The predictor is a non-negative least-squares fit of latency on shape features of the
architecture (matrix-multiply MACs of the projections, the FFN, attention and LM head, plus
per-layer and fixed overheads); it is saved with the device description and its training error.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls
from transformers import PretrainedConfig, PreTrainedModel

from search_spaces import Arch
from supernet.hf_models import build_model

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    spread_ms: float  # interquartile range of one measurement; range of the pass medians (round-robin)
    runs: int
    batch: int
    seq_len: int
    device: str
    threads: int
    dtype: str = "fp32"
    decode_ms_per_token: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def device_description(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return {"device": str(device), "name": name, "torch": torch.__version__, "cpu_count": os.cpu_count()}


def device_key(device: torch.device) -> str:
    return str(device).replace(":", "-")


def _timed(fn: Any, sync: Any, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


@torch.no_grad()
def measure_forward(model: PreTrainedModel, batch: int, seq_len: int, device: torch.device,
                    warmup: int = 2, repeats: int = 7, dtype: str = "fp32", decode_tokens: int = 0) -> Latency:
    """Median and interquartile range of `repeats` timed forwards (prefill for decoders) after
    `warmup` untimed ones; with `decode_tokens` > 0, also the mean per-token decode time."""
    model = model.to(device=device, dtype=DTYPES[dtype]).eval()
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = _timed(lambda: model(input_ids=ids), sync, warmup, repeats)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    decode = None
    if decode_tokens > 0:
        def generate() -> None:
            out = model(input_ids=ids, use_cache=True)
            cache, nxt = out.cache, ids[:, -1:]
            for _ in range(decode_tokens):  # one token at a time, reading and extending the KV cache
                out = model(input_ids=nxt, cache=cache, use_cache=True)
                cache = out.cache
        total = statistics.median(_timed(generate, sync, 1, max(1, repeats // 2)))
        decode = max(0.0, total - statistics.median(times)) / decode_tokens
    return Latency(statistics.median(times), q[2] - q[0], repeats, batch, seq_len, str(device),
                   torch.get_num_threads(), dtype, decode)


def measure_round_robin(archs: list[Arch], base_config: PretrainedConfig | dict | None, batch: int, seq_len: int,
                        device: torch.device, dtype: str = "fp32", repeats: int = 7, rounds: int = 3,
                        decode: bool = True, progress: bool = False) -> list[Latency]:
    """Measure every architecture in `rounds` passes over the whole list and keep, per
    architecture, the median of its per-pass medians (spread: their range). On shared or virtual
    machines interference comes in bursts of seconds that inflate one whole measurement; passes
    spread over minutes keep such a burst from deciding any point."""
    from tqdm import tqdm

    passes: list[list[Latency]] = [[] for _ in archs]
    bar = tqdm(total=len(archs) * rounds, desc=f"latency on {device}", disable=not progress)
    for _ in range(rounds):
        for i, arch in enumerate(archs):
            passes[i].append(measure_arch(arch, base_config, batch, seq_len, device, dtype, repeats, decode))
            bar.update()
    bar.close()
    out = []
    for runs in passes:
        medians = [r.median_ms for r in runs]
        decodes = [r.decode_ms_per_token for r in runs if r.decode_ms_per_token is not None]
        out.append(Latency(statistics.median(medians), max(medians) - min(medians), repeats * rounds, batch, seq_len,
                           runs[0].device, runs[0].threads, dtype, statistics.median(decodes) if decodes else None))
    return out


def measure_arch(arch: Arch, base_config: PretrainedConfig | dict | None, batch: int, seq_len: int,
                 device: torch.device, dtype: str = "fp32", repeats: int = 7, decode: bool = True) -> Latency:
    """Forward (prefill) latency of `arch`'s stock HF model; decoders also get 8 decode steps
    timed unless `decode` is False."""
    decode_tokens = 8 if arch.family == "decoder" and decode else 0
    return measure_forward(build_model(arch, base_config, attn_implementation="sdpa"), batch, seq_len, device,
                           repeats=repeats, dtype=dtype, decode_tokens=decode_tokens)


# -- the table of measured points, one file per device ----------------------------------------

@dataclass
class LatencyTable:
    device: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)  # {"arch": {...}, **Latency.to_dict()}

    def add(self, arch: Arch, latency: Latency) -> None:
        self.points.append({"arch": arch.to_dict(), **latency.to_dict()})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"device": self.device, "points": self.points}, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        data = json.loads(path.read_text())
        return cls(data["device"], data["points"])

    @classmethod
    def load_or_new(cls, path: Path, device: dict[str, Any]) -> LatencyTable:
        return cls.load(path) if path.is_file() else cls(device)

    def samples(self, batch: int, seq_len: int, dtype: str) -> tuple[list[Arch], np.ndarray]:
        rows = [p for p in self.points if (p["batch"], p["seq_len"], p["dtype"]) == (batch, seq_len, dtype)]
        return [Arch.from_dict(p["arch"]) for p in rows], np.array([p["median_ms"] for p in rows])


# -- the predictor ------------------------------------------------------------------------------

FEATURES = ("fixed", "layers", "proj_macs", "ffn_macs", "attention_macs", "head_macs", "layer_tokens")


def features(arch: Arch, batch: int, seq_len: int) -> np.ndarray:
    """Shape features whose non-negative combination models latency (MACs in millions)."""
    n = batch * seq_len
    h, a, kv, f = arch.hidden_size, arch.attention_width, arch.kv_width, arch.intermediate_size
    ffn_mats = 3 if arch.family == "decoder" else 2
    head = n * h * arch.vocab_size if arch.family == "decoder" else 0
    return np.array([
        1.0,
        arch.num_layers,
        arch.num_layers * n * (h * a + 2 * h * kv + a * h) / 1e6,
        arch.num_layers * n * ffn_mats * h * f / 1e6,
        arch.num_layers * 2 * batch * seq_len * seq_len * a / 1e6,
        head / 1e6,
        arch.num_layers * n * h / 1e6,
    ])


@dataclass
class LatencyPredictor:
    coef: list[float]
    batch: int
    seq_len: int
    dtype: str
    device: dict[str, Any]
    train_mape: float
    train_max_ape: float
    n_points: int

    def predict_ms(self, arch: Arch) -> float:
        return float(features(arch, self.batch, self.seq_len) @ np.array(self.coef))

    @classmethod
    def fit(cls, archs: list[Arch], latencies_ms: np.ndarray, batch: int, seq_len: int, dtype: str,
            device: dict[str, Any]) -> LatencyPredictor:
        if len(archs) < len(FEATURES):
            raise ValueError(f"latency fit: {len(archs)} measured point(s); need at least {len(FEATURES)} "
                             f"(measure more with `nas latency measure --samples N`)")
        x = np.stack([features(a, batch, seq_len) for a in archs])
        # Relative error matters (a 5% miss is a 5% miss at any size): weight rows by 1/latency.
        w = 1.0 / latencies_ms
        coef, _ = nnls(x * w[:, None], latencies_ms * w)
        ape = np.abs(x @ coef - latencies_ms) / latencies_ms
        return cls(coef.tolist(), batch, seq_len, dtype, device, float(ape.mean()), float(ape.max()), len(archs))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"features": FEATURES, **asdict(self)}, indent=2))

    @classmethod
    def load(cls, path: Path) -> LatencyPredictor:
        data = json.loads(path.read_text())
        data.pop("features", None)
        return cls(**data)


def table_path(run_dir: Path, device: torch.device) -> Path:
    return run_dir / "latency" / f"table-{device_key(device)}.json"


def predictor_path(run_dir: Path, device: torch.device) -> Path:
    return run_dir / "latency" / f"predictor-{device_key(device)}.json"


class NoPredictorError(FileNotFoundError):
    pass


def load_predictor(run_dir: Path, device: torch.device, config_path: str = "CONFIG") -> LatencyPredictor:
    path = predictor_path(run_dir, device)
    if not path.is_file():
        raise NoPredictorError(
            f"search.latency_device: no latency predictor for device {str(device)!r} in {path.parent}; make one with "
            f"`nas latency measure --config {config_path} --samples 40 --device {device}` then "
            f"`nas latency fit --config {config_path} --device {device}`")
    return LatencyPredictor.load(path)


def measure_into_table(archs: list[Arch], base_config: PretrainedConfig | dict | None, device: torch.device,
                       batch: int, seq_len: int, dtype: str, path: Path, repeats: int = 7, rounds: int = 3,
                       progress: bool = True) -> LatencyTable:
    """Measure the architectures round-robin and add them to the device's table at `path`."""
    table = LatencyTable.load_or_new(path, device_description(device))
    for arch, latency in zip(archs, measure_round_robin(archs, base_config, batch, seq_len, device, dtype, repeats,
                                                        rounds, progress=progress)):
        table.add(arch, latency)
    table.save(path)
    return table


@dataclass
class LatencyCheck:
    """A predicted latency against the one measured now, for one trial of a front."""

    trial_id: int
    arch_id: str
    predicted_ms: float
    measured_ms: float

    @property
    def error(self) -> float:
        return abs(self.predicted_ms - self.measured_ms) / self.measured_ms


def check_front_latency(front: list[Any], device: torch.device) -> list[LatencyCheck]:
    """Measure each point of a front that has `latency_ms` on `device`, at the study's batch,
    sequence length and dtype."""
    rows = [p for p in front if "latency_ms" in p.objectives]
    if not rows:
        raise ValueError("--verify-latency: no point on this front has latency_ms")
    checks = []
    for p in rows:
        s = p.settings
        measured = measure_arch(Arch.from_dict(p.arch), None, s["batch"] or 1, s["seq_len"] or 128, device,
                                s["latency_dtype"] or "fp32").median_ms
        checks.append(LatencyCheck(p.trial_id, p.arch_id, p.objectives["latency_ms"], measured))
    return checks
