"""The Optuna storage shared by concurrent workers hands each queued trial to exactly one of them."""

from __future__ import annotations

import multiprocessing as mp

import optuna

from nas.storage import open_storage

QUEUED = 40
WORKERS = 4


def _pop_until_empty(url: str, study_name: str, start, out) -> None:
    """Ask trials until the queue is empty; report the numbers of the queued trials this process got."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    start.wait()
    got: list[int] = []
    try:
        while True:
            trial = study.ask()
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if trial.number >= QUEUED:  # a new trial: the queue was empty
                break
            got.append(trial.number)
        out.put(got)
    except Exception as err:  # a trial taken twice: the second tell finds it finished
        out.put(f"{type(err).__name__}: {err}")


def test_concurrent_workers_never_pop_the_same_queued_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(url))
    for i in range(QUEUED):
        study.enqueue_trial({"x": i})
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_pop_until_empty, args=(url, "queue", start, out)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if isinstance(r, str)]
    assert not errors
    popped = [n for r in results for n in r]
    assert sorted(popped) == list(range(QUEUED))  # every queued trial once: none twice, none lost
