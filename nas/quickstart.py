"""`nas quickstart`: the whole job on the offline defaults, in one command.

It writes the run config (the packaged default for the family, with its run directory), trains
the supernets briefly, searches each sub-space, queries the Pareto front, saves its plot, and
exports the best student under the config's budget (`student.budget_ratio`: 1/2.7 of the
teacher's FLOPs for encoders, AutoDistil's headline ratio; 1/2 for decoders). With
`student.distill_steps` (the decoder default) the chosen student is then distilled on its own
(`nas distill`), since a few supernet steps leave a decoder that cannot yet write a sentence; for
decoders the greedy continuations of a few prompts by the teacher and the student are shown, and
export is checked the way a user would: the supernet's sub-network and the exported model
continue the prompts with the same tokens. Running it again reuses what is done: training
resumes or is a no-op, the search continues up to its trial count, an export of the same trial
and a finished distillation are kept. Each stage's wall time is recorded.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

import nas
from nas.config import RunConfig, dump_config, parse_config
from nas.distill import distill
from nas.export import ExportError, best_under, export
from nas.generation import PROMPTS, continuations, greedy_model, greedy_supernet
from nas.run import Run, load_trained_supernet, open_run
from nas.search.pareto import Point, format_front, load_points, pareto_front, plot_front
from nas.search.study import run_search, study_name
from nas.train import run_train
from search_spaces import Arch, InvalidSpaceError, flops
from supernet import teachers
from supernet.hf_models import MODEL_CLASS

log = logging.getLogger(__name__)

DEFAULT_CONFIGS = {"encoder": "encoder-minilm.yaml", "decoder": "decoder-smollm2.yaml"}


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
    stage_seconds: dict[str, float] = field(default_factory=dict)
    samples: dict[str, dict[str, str]] = field(default_factory=dict)  # decoders: model -> prompt -> text
    export_parity: bool | None = None  # decoders: supernet and exported model generate the same tokens


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

    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 1)
        clock = now

    run_train(config, progress=progress)
    lap("train supernets")
    run_search(config, progress=progress)
    lap("search")

    run = open_run(config, save_config=False)
    studies = [study_name(config, sub) for sub in run.space.subspaces]
    points, directions = load_points(config.storage_url, studies)
    objectives = [o.name for o in config.search.objectives]
    front = pareto_front(points, objectives, directions)
    plot = run_dir / "front.png"
    plot_front(points, front, objectives, plot)

    budget = student_budget(config, run)
    distilled = config.student.distill_steps > 0
    student_dir = run_dir / "student"
    searched_dir = run_dir / "searched-student" if distilled else student_dir
    chosen = None
    try:
        chosen = best_under(config.storage_url, ("flops", budget), choice_studies(config, run, budget))
    except (ExportError, InvalidSpaceError) as err:  # nothing feasible under the budget
        log.warning("no student exported: %s", err)
    result = QuickstartResult(config, config_path, front, format_front(front, objectives, "table"), plot,
                              student_dir if chosen else None, chosen, budget, seconds)
    if chosen is None:
        return result
    existing = searched_dir / "distilnas.json"
    same = existing.is_file() and json.loads(existing.read_text()).get("trial_id") == chosen.trial_id
    if not same:
        export(config.storage_url, searched_dir, trial_id=chosen.trial_id, force=True)
    lap("export")
    if run.space.teacher.family == "decoder":
        result.export_parity = export_matches_supernet(run, chosen, searched_dir)
    if distilled:
        record = student_dir / "distilnas.json"
        previous = json.loads(record.read_text()) if record.is_file() else {}
        asked = {"steps": config.student.distill_steps, "source": f"student:{searched_dir}",
                 "lr": config.distill_train.lr}
        done = all(previous.get(k) == v for k, v in asked.items())
        if not done:
            distill(config, student_dir, config.student.distill_steps, student=searched_dir, force=True)
        lap("distill student")
    if run.space.teacher.family == "decoder":
        tc = config.teacher
        tokenizer = teachers.load_tokenizer(tc.id, tc.revision, tc.trust_remote_code)
        result.samples = {
            "teacher": continuations(teachers.load_teacher(tc.id, tc.revision, tc.trust_remote_code), tokenizer),
            "student": continuations(MODEL_CLASS["decoder"].from_pretrained(student_dir), tokenizer),
        }
        lap("samples")
    return result


def student_budget(config: RunConfig, run: Run) -> float:
    """The FLOPs budget of the handed-over student: the teacher's FLOPs, counted as the search
    counts costs, divided by `student.budget_ratio`."""
    return flops(run.space.teacher, config.search.batch_size, config.search.seq_len) / config.student.budget_ratio


def choice_studies(config: RunConfig, run: Run, budget: float) -> list[str]:
    """The studies the student is chosen from (`student.choose_in`). Each sub-space's trials are
    scored on its own supernet, and a band's sandwich trains its largest member at every step, so
    `budget_band` compares only members of the band that holds the budget."""
    subspaces = list(run.space.subspaces)
    if config.student.choose_in == "budget_band":
        subspaces = [run.space.band_holding(
            budget, lambda a: flops(a, config.search.batch_size, config.search.seq_len))]
    return [study_name(config, sub) for sub in subspaces]


def export_matches_supernet(run, chosen: Point, exported: Path, new_tokens: int = 12) -> bool:
    """Greedy tokens of the supernet's sub-network and of the exported model agree on every prompt."""
    supernet, _ = load_trained_supernet(run, chosen.subspace, torch.device("cpu"))
    model = MODEL_CLASS["decoder"].from_pretrained(exported).eval()
    tokenizer = teachers.load_tokenizer(run.config.teacher.id, run.config.teacher.revision,
                                        run.config.teacher.trust_remote_code)
    arch, eos = Arch.from_dict(chosen.arch), tokenizer.eos_token_id
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        if greedy_supernet(supernet, arch, ids, new_tokens, eos) != greedy_model(model, ids, new_tokens, eos):
            log.warning("export check: the exported model continues %r differently from the supernet", prompt)
            return False
    return True
