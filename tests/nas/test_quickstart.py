"""`nas quickstart` end to end on a tiny offline run (the real command, shrunk by --out config)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import TINY_ENCODER, tiny_run_config


@pytest.mark.slow
@pytest.mark.integration
def test_quickstart_runs_and_reuses(tmp_path):
    # A pre-written run config in --out is reused by quickstart: here, a tiny teacher and 1 step.
    raw = tiny_run_config(tmp_path, TINY_ENCODER, steps=1)
    raw["run_dir"] = str(tmp_path / "qs")
    raw["search"]["trials"] = 3
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "config.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "nas.cli", "quickstart", "--out", str(tmp_path / "qs"), "--no-progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Pareto front" in first.stdout and "exported student" in first.stdout
    for path in ("config.yaml", "study.db", "front.png", "student/model.safetensors", "student/README.md",
                 "supernets/small/train.jsonl"):
        assert (tmp_path / "qs" / path).exists(), path
    before = (tmp_path / "qs" / "student" / "model.safetensors").stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "qs" / "student" / "model.safetensors").stat().st_mtime_ns == before  # reused, not redone
