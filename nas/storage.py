"""Opening an Optuna storage from a URL: SQLite / PostgreSQL (RDB, with heartbeats so a trial
left RUNNING by a dead process is failed and retried) or `journal:///path/to/file.log`."""

from __future__ import annotations

import random
import time
import warnings

import optuna
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
                return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
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
