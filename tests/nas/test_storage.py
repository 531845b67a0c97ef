"""The Optuna storage shared by concurrent workers hands each queued trial to exactly one of them,
and a trial left RUNNING by a dead process is failed and retried, even one that never wrote a
heartbeat."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime, timedelta

import optuna
import sqlalchemy

from nas.storage import GRACE_S, open_storage

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


def test_a_running_trial_that_never_wrote_a_heartbeat_is_failed_and_retried_after_the_grace_period(tmp_path):
    # A process killed between creating its trial and the trial's first heartbeat leaves it
    # RUNNING with no heartbeat; Optuna alone never finds such a trial stale.
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, directions=["minimize"])
    orphan, starting = study.ask(), study.ask()  # RUNNING, no heartbeat (ask() starts none)
    long_ago = datetime.now() - timedelta(seconds=GRACE_S + 5)
    with storage.engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE trials SET datetime_start = :t WHERE trial_id = :i"),
                           {"t": long_ago, "i": orphan._trial_id})

    optuna.storages.fail_stale_trials(study)

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert trials[starting.number].state == optuna.trial.TrialState.RUNNING  # within the grace period: alive
    retries = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    assert [t.system_attrs["failed_trial"] for t in retries] == [orphan.number]
