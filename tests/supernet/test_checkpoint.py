"""Checkpoint writes leave nothing half-written: a failed write (a file-size limit, as a full disk
fails it) removes its folder, and a killed writer's folder is removed by the next write."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import torch

from supernet.checkpoint import load_latest, save_checkpoint

FULL_DISK = textwrap.dedent("""
    import resource, sys, torch
    from supernet.checkpoint import save_checkpoint
    out = sys.argv[1]
    save_checkpoint(__import__("pathlib").Path(out), 1, {"w": torch.zeros(1000)}, {"m": torch.ones(10)}, {})
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))  # files past 256 KiB fail
    try:
        save_checkpoint(__import__("pathlib").Path(out), 2, {"w": torch.zeros(1_000_000)}, None, {})
    except OSError as err:
        print("failed:", err)
""")


def test_a_write_that_fails_on_a_full_disk_leaves_no_folder_and_the_previous_checkpoint(tmp_path):
    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith(f"failed: checkpoint {tmp_path / 'step-00000002'}: the write failed"), out.stderr
    assert "File too large" in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]  # no .tmp-step-* left
    ckpt = load_latest(tmp_path)
    assert ckpt.step == 1 and torch.equal(ckpt.weights["w"], torch.zeros(1000))


def test_the_next_write_removes_only_a_dead_writers_folder(tmp_path):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".tmp-step-00000004-{host}-{dead.pid}"
    running = tmp_path / f".tmp-step-00000004-{host}-{subprocess.os.getpid()}"  # a live writer's
    elsewhere = tmp_path / f".tmp-step-00000004-other-host-{dead.pid}"  # another machine's: not ours to judge
    for folder in (orphan, running, elsewhere):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    save_checkpoint(tmp_path, 6, {"w": torch.ones(3)}, None, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["step-00000006", running.name, elsewhere.name])
