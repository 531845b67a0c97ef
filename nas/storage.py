"""Opening an Optuna storage from a URL: SQLite / PostgreSQL (RDB, with heartbeats so a trial
left RUNNING by a dead process is failed and retried) or `journal:///path/to/file.log`.

SQLite needs one repair to be shared by concurrent workers (resident Ray workers, several
`nas search` processes): Python's sqlite3 driver starts a transaction only at the first write,
so Optuna's "read a queued trial, mark it RUNNING if still WAITING" runs its read outside any
lock, and two workers could both take the same queued trial (seen in CI: both evaluated warm
start 0, the second `tell` failed). `SerializedSQLiteStorage` opens every transaction with
`BEGIN IMMEDIATE`, so a read-then-write holds the database's write lock from its first read.
"""

from __future__ import annotations

import random
import time
import warnings
from datetime import datetime, timedelta
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
)
from optuna.storages.journal import JournalFileBackend

HEARTBEAT_S = 10
GRACE_S = 30
CREATE_ATTEMPTS = 5
SQLITE_LOCK_WAIT_S = 60  # how long a transaction waits for another worker's write lock


def _begin_immediate(engine: sqlalchemy.engine.Engine) -> None:
    """Every transaction on `engine` takes SQLite's write lock when it begins (SQLAlchemy's recipe
    for serializable SQLite: the driver's own implicit BEGIN is turned off, ours is emitted)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(engine, "connect", on_connect)
    sqlalchemy.event.listen(engine, "begin", on_begin)
    engine.dispose()  # connections opened while the schema was checked predate the hooks


class HeartbeatRDBStorage(RDBStorage):
    """An `RDBStorage` whose stale trials include RUNNING trials that never wrote a heartbeat.

    Optuna skips a RUNNING trial with no heartbeat when it looks for stale ones. A process killed
    between creating its trial and the trial's first heartbeat (a window of milliseconds; hit
    in 1 of 10 Ray-worker kills under load in benchmarks/faults.py, where the driver's exit took
    the other worker down just after it created its trial) left that trial RUNNING for good. Here
    such a trial is stale once it started longer ago than the grace period, like a trial whose
    last heartbeat is that old."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        grace = self.grace_period if self.grace_period is not None else 2 * (self.heartbeat_interval or 0)
        cutoff = datetime.now() - timedelta(seconds=grace)  # Optuna stamps datetime_start by the local clock
        with self.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            started = trial.datetime_start
            if trial._trial_id not in beating and trial._trial_id not in stale and started and started < cutoff:
                stale.append(trial._trial_id)
        return stale


class SerializedSQLiteStorage(HeartbeatRDBStorage):
    """An `RDBStorage` on SQLite whose transactions are serialized (see the module's docstring)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, engine_kwargs={"connect_args": {"timeout": SQLITE_LOCK_WAIT_S}}, **kwargs)
        _begin_immediate(self.engine)

    def __setstate__(self, state: dict[Any, Any]) -> None:  # unpickled in another process: a new engine
        super().__setstate__(state)
        _begin_immediate(self.engine)


class StorageError(ValueError):
    pass


def open_storage(url: str) -> BaseStorage:
    if url.startswith("journal://"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal://")))
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+", "mysql")):
        raise StorageError(f"storage: got {url!r}; allowed: sqlite:///PATH, postgresql://..., journal:///PATH")
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental; we rely on them knowingly
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage_class = SerializedSQLiteStorage if url.startswith("sqlite:") else HeartbeatRDBStorage
                return storage_class(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                     heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            # Several processes creating one new database race on its schema (alembic_version);
            # the loser finds the schema made by the winner on the next attempt.
            if attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.2)
    raise AssertionError("unreachable")


def study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
