"""Fault injection for the crash tests and `benchmarks/faults.py`.

`DISTILNAS_KILL_AT=POINT:STEP` makes the process SIGKILL itself when it reaches POINT at STEP
(POINT: `train-step` after an optimizer step, `checkpoint-write` half-way through writing a
checkpoint, `search-trial` after a trial, `evaluate` inside a trial before its measurement is
recorded; STEP counts trials from 1 for the last two). Unset, this does nothing. With
`DISTILNAS_KILL_ONCE=PATH` the kill happens only if PATH does not exist yet (it is created
first), so a restarted worker runs through. `DISTILNAS_RAISE_AT=POINT:KEY` raises an injected
error instead (POINT `evaluate`, KEY `<study>:<arch id>`), where a Ray worker cannot be
monkeypatched.
"""

from __future__ import annotations

import os
import signal


def maybe_die(point: str, step: int) -> None:
    target = os.environ.get("DISTILNAS_KILL_AT")
    if target and target == f"{point}:{step}":
        once = os.environ.get("DISTILNAS_KILL_ONCE")
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


class InjectedFault(RuntimeError):
    pass


def maybe_raise(point: str, key: str) -> None:
    if os.environ.get("DISTILNAS_RAISE_AT") == f"{point}:{key}":
        raise InjectedFault(f"injected failure at {point}:{key}")
