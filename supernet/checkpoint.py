"""Atomic, verifiable checkpoints: safetensors weights, a torch optimizer file (loaded with
`weights_only=True`) and a JSON state, written into a temporary folder and renamed into place.

Layout: `<dir>/step-00000040/{model.safetensors, optimizer.pt, state.json}`. `state.json` is
written last and records the SHA-256 of the weights, so a folder is complete and intact exactly
when its state parses and the hash matches; loading takes the newest such folder, so a run
killed during a write resumes from the one before. A write that fails (a full disk) removes its
temporary folder before the error goes on; one left by a killed process
(`.tmp-step-STEP-HOST-PID`, that PID gone on this host) is removed by the next write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from supernet.faults import maybe_die

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    path: Path
    step: int
    weights: dict[str, Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]


def hash_file(path: Path, h: "hashlib._Hash | None" = None) -> "hashlib._Hash":
    """Feed a file's bytes, in 1 MiB chunks, into `h` (a new SHA-256 when None) and return it."""
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h


def _sha256(path: Path) -> str:
    return hash_file(path).hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file's bytes, or a directory's entries (a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_orphaned_writes(directory: Path) -> list[Path]:
    """Remove the temporary folders of writes whose process died on this host; returns them."""
    host, removed = socket.gethostname(), []
    for tmp in directory.glob(".tmp-step-*"):
        rest = tmp.name.removeprefix(".tmp-step-").split("-", 1)  # STEP, HOST-PID
        writer, _, pid = rest[-1].rpartition("-")
        if writer == host and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def save_checkpoint(directory: Path, step: int, weights: dict[str, Tensor],
                    optimizer: dict[str, Any] | None, state: dict[str, Any], keep: int = 2) -> Path:
    """Write step `step` atomically; keep the newest `keep` checkpoints."""
    directory.mkdir(parents=True, exist_ok=True)
    for tmp in remove_orphaned_writes(directory):
        log.warning("removed %s: a checkpoint write whose process died", tmp)
    final = directory / f"step-{step:08d}"
    tmp = directory / f".tmp-step-{step:08d}-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / "model.safetensors"))
        maybe_die("checkpoint-write", step)  # fault injection: a kill in the middle of a write
        if optimizer is not None:
            torch.save(optimizer, tmp / "optimizer.pt")
        record = {**state, "step": step, "weights_sha256": _sha256(tmp / "model.safetensors")}
        (tmp / "state.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        for f in tmp.iterdir():
            _fsync(f)
    except Exception as err:  # a full disk: leave no half-written folder, say what failed
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(f"checkpoint {final}: the write failed ({err}); nothing was kept; free space and rerun "
                      f"to resume from the previous checkpoint") from err
    except BaseException:  # an interrupt: no half-written folder either
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(directory)  # the rename itself survives a power cut
    for old in sorted(directory.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _read(path: Path, with_optimizer: bool) -> Checkpoint:
    state = json.loads((path / "state.json").read_text())
    if _sha256(path / "model.safetensors") != state["weights_sha256"]:
        raise ValueError("weights hash mismatch")
    optimizer = None
    if with_optimizer and (path / "optimizer.pt").is_file():
        optimizer = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
    return Checkpoint(path, int(state["step"]), load_file(str(path / "model.safetensors")), optimizer, state)


def load_latest(directory: Path, with_optimizer: bool = True) -> Checkpoint | None:
    """The newest complete, intact checkpoint in `directory`, or None. Broken ones are skipped
    with a warning (never deleted: they are evidence)."""
    for path in sorted(directory.glob("step-*"), reverse=True):
        if path.is_symlink():  # a checkpoint is a real directory inside the run, never a link out of it
            log.warning("skipping checkpoint %s: a symbolic link", path)
            continue
        try:
            return _read(path, with_optimizer)
        except Exception as err:
            log.warning("skipping checkpoint %s: %s", path, err)
    return None


def latest_state(directory: Path) -> dict[str, Any] | None:
    """The JSON state of the newest checkpoint in `directory` that has one, without reading
    its weights (for what a run's checkpoints say about themselves, e.g. the supernet's shape)."""
    for path in sorted(directory.glob("step-*"), reverse=True):
        try:
            if not path.is_symlink():
                return dict(json.loads((path / "state.json").read_text()))
        except (OSError, ValueError):
            continue
    return None
