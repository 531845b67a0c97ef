"""`nas quickstart`: the whole job on the offline defaults, in one command.

It writes the run config (the packaged default for the family, with its run directory), trains
the K=3 supernets briefly, searches each sub-space, queries the Pareto front, saves its plot, and
exports the best student under the default budget (1/2.7 of the teacher's FLOPs, AutoDistil's
headline ratio). Running it again reuses what is done: training resumes or is a no-op, the search
continues up to its trial count, and an export of the same trial is kept.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

import nas
from nas.config import RunConfig, dump_config, parse_config
from nas.export import ExportError, best_under, export
from nas.pareto import Point, format_front, load_points, pareto_front, plot_front
from nas.search import run_search, study_name
from nas.train import run_train
from nas.run import open_run
from search_spaces import flops

log = logging.getLogger(__name__)

DEFAULT_CONFIGS = {"encoder": "encoder-minilm.yaml", "decoder": "decoder-smollm2.yaml"}
BUDGET_RATIO = 2.7


@dataclass
class QuickstartResult:
    config: RunConfig
    config_path: Path
    front: list[Point]
    front_table: str
    plot: Path
    student: Path | None
    student_point: Point | None
    budget_flops: float


def default_config(family: str, out: Path | None) -> dict:
    if family not in DEFAULT_CONFIGS:
        raise ValueError(f"--family: got {family!r}; allowed: {sorted(DEFAULT_CONFIGS)}")
    data = yaml.safe_load((Path(nas.__file__).parent / "configs" / DEFAULT_CONFIGS[family]).read_text())
    data["run_dir"] = str(out or Path("runs") / f"quickstart-{family}")
    return data


def quickstart(family: str = "encoder", out: Path | None = None, progress: bool = True) -> QuickstartResult:
    data = default_config(family, out)
    run_dir = Path(data["run_dir"])
    config_path = run_dir / "config.yaml"
    if config_path.is_file():  # a second run reuses the run's own config
        data = yaml.safe_load(config_path.read_text())
    config = parse_config(data, source=str(config_path))
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(dump_config(config))

    run_train(config, progress=progress)
    run_search(config, progress=progress)

    run = open_run(config, save_config=False)
    studies = [study_name(config, sub) for sub in run.space.subspaces]
    points, directions = load_points(config.storage_url, studies)
    objectives = [o.name for o in config.search.objectives]
    front = pareto_front(points, objectives, directions)
    plot = run_dir / "front.png"
    plot_front(points, front, objectives, plot)

    budget = flops(run.space.teacher, config.search.batch_size, config.search.seq_len) / BUDGET_RATIO
    student_dir, chosen = run_dir / "student", None
    try:
        chosen = best_under(config.storage_url, ("flops", budget), studies)
    except ExportError as err:
        log.warning("no student exported: %s", err)
    if chosen is not None:
        existing = student_dir / "distilnas.json"
        same = existing.is_file() and json.loads(existing.read_text()).get("trial_id") == chosen.trial_id
        if not same:
            export(config.storage_url, student_dir, trial_id=chosen.trial_id, force=True)
    return QuickstartResult(config, config_path, front, format_front(front, objectives, "table"), plot,
                            student_dir if chosen else None, chosen, budget)
