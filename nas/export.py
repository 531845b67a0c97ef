"""`nas export`: a trial's sub-network as a stock Hugging Face directory (config, safetensors,
tokenizer, model card), loadable with AutoModel / AutoModelForCausalLM without remote code."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from nas.config import BUDGET_KEYS, RunConfig, load_config
from nas.run import load_trained_supernet, open_run
from nas.search.pareto import Point, load_points, pareto_front
from nas.storage import open_storage, study_names
from search_spaces import Arch
from supernet import teachers

log = logging.getLogger(__name__)


class ExportError(ValueError):
    pass


def parse_budget(text: str) -> tuple[str, float]:
    key, _, value = text.partition("=")
    if key not in BUDGET_KEYS or not value:
        raise ExportError(f"--best-under: got {text!r}; use KEY=VALUE with KEY one of {', '.join(BUDGET_KEYS)}")
    try:
        return key, float(value)
    except ValueError:
        raise ExportError(f"--best-under: {value!r} is not a number") from None


def best_under(storage_url: str, budget: tuple[str, float], studies: list[str] | None = None) -> Point:
    """The feasible trial within the budget with the best first quality objective."""
    points, directions = load_points(storage_url, studies)
    quality = next((o for o in directions if o not in BUDGET_KEYS), None)
    if quality is None:
        raise ExportError("--best-under: the studies have no quality objective to rank by")
    front = pareto_front(points, [quality, budget[0]], directions, {budget[0]: budget[1]})
    if not front:
        raise ExportError(f"--best-under: no feasible trial with {budget[0]} <= {budget[1]:g}")
    sign = 1 if directions[quality] == "minimize" else -1
    return min(front, key=lambda p: sign * p.objectives[quality])


def check_target(out: Path, force: bool) -> Path:
    if out.is_symlink():
        raise ExportError(f"--out: {str(out)!r} is a symbolic link; give a real directory")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out: {str(out)!r} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"--out: {str(out)!r} is not empty; pass --force to overwrite")
    return out


def model_card(arch: Arch, trial: dict[str, Any]) -> str:
    e = lambda v: html.escape(str(v))  # noqa: E731  user-provided strings never become markup
    objectives = "\n".join(f"| {e(k)} | {v:.6g} |" for k, v in trial["objectives"].items())
    prov = trial.get("provenance", {})
    return f"""---
library_name: transformers
tags: [distilnas, distillation, neural-architecture-search]
---
# Student {e(arch.id)}

Distilled by distilnas from teacher `{e(prov.get('teacher_id'))}`:
a sub-network of the sub-space `{e(trial['subspace'])}` supernet, with inherited weights, exported
from trial {trial['trial_id']} of study `{e(trial['study'])}`. Fine-tune it before use.

## Architecture

```json
{json.dumps(arch.to_dict(), indent=2)}
```

## Objectives (measured in the search)

| objective | value |
|---|---|
{objectives}

Budgets of the search: `{e(json.dumps(trial.get('budgets', {})))}`; feasible: {trial.get('feasible')}.

## Provenance

```json
{e(json.dumps(prov, indent=2))}
```
"""


def save_model(model: PreTrainedModel, config: RunConfig, out: Path) -> None:
    """A stock HF directory: config, safetensors weights and the teacher's tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tc = config.teacher
    teachers.load_tokenizer(tc.id, tc.revision, tc.trust_remote_code).save_pretrained(out)


def export(storage_url: str, out: Path, trial_id: int | None = None, best: str | None = None,
           studies: list[str] | None = None, force: bool = False, device: str = "cpu") -> Path:
    out = check_target(Path(out), force)
    storage = open_storage(storage_url)
    if (trial_id is None) == (best is None):
        raise ExportError("export: give exactly one of --trial or --best-under")
    if best is not None:
        trial_id = best_under(storage_url, parse_budget(best), studies).trial_id
    ids = [storage.get_study_id_from_name(name) for name in study_names(storage)]
    found = [(sid, t) for sid in ids for t in storage.get_all_trials(sid, deepcopy=False) if t._trial_id == trial_id]
    if not found:
        raise ExportError(f"--trial: no trial {trial_id} in {storage_url}")
    study_id, frozen = found[0]
    if "arch" not in frozen.user_attrs:
        raise ExportError(f"--trial: trial {trial_id} has no architecture (state {frozen.state.name})")
    study_attrs = storage.get_study_user_attrs(study_id)
    run_dir = Path(study_attrs["run_dir"])
    config = load_config(run_dir / "config.yaml")
    run = open_run(config, save_config=False)
    arch = Arch.from_dict(frozen.user_attrs["arch"])
    subspace = frozen.user_attrs["subspace"]
    supernet, ckpt = load_trained_supernet(run, subspace, torch.device(device))
    expected = frozen.user_attrs.get("provenance", {}).get("supernet_sha256")
    if expected and ckpt.state["weights_sha256"] != expected:
        log.warning("the supernet of %s changed since trial %d was evaluated (checkpoint %s, trial saw %s)",
                    subspace, trial_id, ckpt.state["weights_sha256"][:12], expected[:12])
    save_model(supernet.extract(arch), config, out)
    record = {"trial_id": trial_id, "study": storage.get_study_name_from_id(study_id), "storage": storage_url,
              "subspace": subspace,
              "objectives": frozen.user_attrs.get("objectives", {}), "feasible": frozen.user_attrs.get("feasible"),
              "budgets": study_attrs.get("budgets", {}), "provenance": frozen.user_attrs.get("provenance", {}),
              "arch": arch.to_dict(), "exported_from_supernet_sha256": ckpt.state["weights_sha256"]}
    (out / "distilnas.json").write_text(json.dumps(record, indent=2))
    (out / "README.md").write_text(model_card(arch, record))
    return out

