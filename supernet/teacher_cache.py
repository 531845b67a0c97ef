"""The teacher's next-token distributions, computed once per token and kept on disk.

For a decoder the teacher's forward pass costs as much as the student's forward and backward
together, and every arm, seed and epoch of a distillation reads the same tokens. `CachedTeacher`
runs the teacher on a row the first time any training step needs it and stores, per token, the
`top_k` largest log-probabilities and their token ids; later reads of that row cost a disk read.

The cached distribution (`TopKLogProbs`) is the top-k log-probabilities where they are, and the
remaining mass 1 - sum(top-k) spread evenly over the other V - k tokens. With k = V it is exact;
`approximation_kl` measures KL(full || rebuilt) so the error of a chosen k is a number, not a
guess (the decoder benchmark reports it). Forward KL reads it as it is stored
(`losses.forward_kl_top_k`); the other logit losses rebuild it dense, (B, T, V), with `dense()`.

Storage: four `.npy` memory maps over every row of the data (train rows, then held-out rows):
log-probabilities (fp16), token ids (int32), and a `filled` flag per row. A row's flag is written
and flushed only after its values are flushed, so a process killed mid-write leaves the row
unfilled and it is recomputed; never a half-written row that reads as valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from search_spaces import Arch
from supernet.data import TokenizedData
from supernet.losses import TopKLogProbs
from supernet.superlm import SuperLM


def top_k_log_probs(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest log-probabilities of each position and their token ids; logits (..., V)."""
    log_p = torch.log_softmax(logits.float(), -1)
    values, ids = log_p.topk(k, dim=-1)
    return values, ids


def approximation_kl(logits: Tensor, k: int, mask: Tensor | None = None) -> float:
    """Mean KL(teacher ‖ rebuilt from top-k) per token, in nats: what caching k ids loses."""
    full = torch.log_softmax(logits.float(), -1)
    approx = TopKLogProbs(*top_k_log_probs(logits, k), logits.shape[-1]).dense()
    kl = (full.exp() * (full - approx)).sum(-1)
    if mask is None:
        return float(kl.mean())
    return float(kl[mask.bool()].mean())


def cache_key(teacher_id: str, teacher: Arch, data: TokenizedData, k: int) -> str:
    """A directory name that changes whenever the teacher, the tokens or k change."""
    blob = json.dumps({"teacher": teacher_id, "arch": teacher.to_dict(), "data": data.fingerprint, "k": k},
                      sort_keys=True)
    return f"k{k}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


class CachedTeacher:
    """A decoder teacher whose next-token distributions are read from disk once computed.

    Rows are addressed as `TokenizedData.batch` numbers them (`batch["rows"]`): the train rows,
    then the held-out rows. Anything else the loss needs from the teacher (relations, hidden
    states) still runs the teacher itself; `teacher_targets` decides what to ask for.
    """

    FAMILY = "decoder"

    def __init__(self, teacher: SuperLM, data: TokenizedData, directory: Path, top_k: int):
        if teacher.FAMILY != "decoder":
            raise ValueError(f"train.teacher_top_k: set to {top_k}, but the teacher is a {teacher.FAMILY}; "
                             "the logit cache is for decoders (encoders have no logit loss)")
        vocab = teacher.full_arch.vocab_size
        if not 0 < top_k <= vocab:
            raise ValueError(f"train.teacher_top_k: got {top_k}; allowed: 1 to the vocabulary size {vocab}")
        self.teacher, self.top_k, self.vocab_size = teacher, top_k, vocab
        self.full_arch = teacher.full_arch
        self.directory = Path(directory)
        n_train, seq_len = data.train["input_ids"].shape
        rows = n_train + data.held_out["input_ids"].shape[0]
        self.shape = (rows, seq_len, top_k)
        if not (self.directory / "filled.npy").is_file():
            self._create()
        self.values = np.load(self.directory / "values.npy", mmap_mode="r+")
        self.ids = np.load(self.directory / "ids.npy", mmap_mode="r+")
        self.filled = np.load(self.directory / "filled.npy", mmap_mode="r+")
        if self.values.shape != self.shape:
            raise ValueError(f"teacher cache {self.directory}: holds shape {self.values.shape}, the data needs "
                             f"{self.shape}; delete the folder to rebuild it")
        self.computed_rows = 0  # rows this process ran the teacher on (the rest were read)

    def _create(self) -> None:
        # Build the empty maps beside the target and rename, so a killed process leaves no half cache.
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.directory.parent, prefix=".tmp-cache-"))
        np.lib.format.open_memmap(tmp / "values.npy", mode="w+", dtype=np.float16, shape=self.shape).flush()
        np.lib.format.open_memmap(tmp / "ids.npy", mode="w+", dtype=np.int32, shape=self.shape).flush()
        np.lib.format.open_memmap(tmp / "filled.npy", mode="w+", dtype=np.bool_, shape=self.shape[:1]).flush()
        try:
            os.rename(tmp, self.directory)
        except OSError:  # another process created it first
            shutil.rmtree(tmp, ignore_errors=True)

    @torch.no_grad()
    def log_probs(self, batch: dict[str, Tensor]) -> TopKLogProbs:
        """The teacher's next-token distributions for `batch`, (B, T) positions, as cached."""
        if "rows" not in batch:
            raise ValueError("a cached teacher needs batch['rows'] (batches from TokenizedData carry them)")
        rows = batch["rows"].cpu().numpy()
        missing = np.flatnonzero(~self.filled[rows])
        if missing.size:
            self._fill(batch, missing)
        values = torch.from_numpy(np.asarray(self.values[rows])).to(batch["input_ids"].device)
        ids = torch.from_numpy(np.asarray(self.ids[rows])).to(batch["input_ids"].device)
        return TopKLogProbs(values.float(), ids.long(), self.vocab_size)

    def _fill(self, batch: dict[str, Tensor], positions: np.ndarray) -> None:
        index = torch.as_tensor(positions, device=batch["input_ids"].device)
        out = self.teacher(batch["input_ids"][index], batch["attention_mask"][index], compute_logits=True)
        values, ids = top_k_log_probs(out.logits, self.top_k)
        rows = batch["rows"].cpu().numpy()[positions]
        self.values[rows] = values.to(torch.float16).cpu().numpy()
        self.ids[rows] = ids.to(torch.int32).cpu().numpy()
        self.values.flush()
        self.ids.flush()
        self.filled[rows] = True  # only after the values are on disk
        self.filled.flush()
        self.computed_rows += len(rows)
