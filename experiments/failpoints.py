"""Failpoints: named places in the sweep where, when the environment asks for it, the process
acts (kill itself, raise, interrupt itself, pause), so a test acts at exactly that point instead
of racing for it (etcd's gofail, TiKV's fail-rs).

``MLP_FAILPOINTS="name=action[;name=action...]"`` arms them; an action is ``kill`` (SIGKILL
itself), ``raise`` (a :class:`FailpointError`, as from a bug), ``interrupt`` (SIGINT to itself,
as Ctrl-C) or ``pause`` (block until the file ``NAME.resume`` appears in ``MLP_FAILPOINTS_DIR``,
default the working directory, after writing ``NAME.PID.paused`` there). ``N:action`` acts at
the N-th time this process passes the point only (``trial.epoch_end=2:kill``: at the end of the
second epoch this process trains); a bare action acts every time. Counts are per process.

Unset, :func:`hit` costs one environment lookup. A name that is not in :data:`POINTS` is an
error (:func:`check`, called before a command does any work), never silence.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "DIR_ENV", "POINTS", "FailpointError", "check", "hit", "armed"]

ENV, DIR_ENV = "MLP_FAILPOINTS", "MLP_FAILPOINTS_DIR"

# name: where it is (the README's table adds what the tests use it for)
POINTS = {
    "study.create": "both stores answered; the storage's tables and the study about to be created "
                    "or loaded (before any lock)",
    "study.parent": "the study created or loaded without a parent MLflow run, which is about to be "
                    "created (under the study's lock)",
    "worker.claim": "a trial just claimed (RUNNING), before its heartbeat and worker are recorded",
    "trial.start": "a claimed trial with its heartbeat beating, before its MLflow run is created",
    "trial.epoch_end": "an epoch's value reported to Optuna, before the next epoch starts",
    "trial.close": "a trial told to Optuna (COMPLETE, PRUNED or FAIL), before its MLflow run closes",
    "trial.closed": "a trial closed in both stores, before its progress line",
    "mlflow.send": "an MLflow call about to be made (trial params, epochs, closes, the parent)",
    "mlflow.sent": "an MLflow call just made and answered",
    "finish.plots": "the finish, after the first of Optuna's plots is drawn",
    "finish.best": "the finish, the best parameters logged but not its experiment file",
    "finish.retrain": "the finish, at each epoch end of the best trial's retrain",
    "finish.register": "the finish, after each retrained model's version is registered (not yet "
                       "recorded in the study), and before the alias best moves",
    "finish.closed": "the finish, the summary metrics logged but the parent run not yet closed",
}
ACTIONS = ("kill", "raise", "interrupt", "pause")
POLL_SECONDS = 0.01  # how often a paused process looks for its resume file


class FailpointError(RuntimeError, ValueError):
    """A failpoint's ``raise``; or ``MLP_FAILPOINTS`` that names no failpoint or action."""


@dataclass(frozen=True)
class Rule:
    action: str
    nth: int | None = None  # act at the nth pass only; None: at every pass


@functools.lru_cache(maxsize=8)
def _parse(spec: str) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, eq, action = (s.strip() for s in part.partition("="))
        count, colon, act = action.rpartition(":") if ":" in action else ("", "", action)
        if not eq or name not in POINTS:
            raise FailpointError(f"{ENV}: unknown failpoint {name!r} in {part!r} "
                                 f"(known: {', '.join(POINTS)})")
        if act not in ACTIONS or (colon and not (count.isdigit() and int(count) >= 1)):
            raise FailpointError(f"{ENV}: {part!r} is not NAME=ACTION or NAME=N:ACTION with N >= 1 "
                                 f"and ACTION one of {', '.join(ACTIONS)}")
        rules[name] = Rule(act, int(count) if colon else None)
    return rules


def armed() -> dict[str, Rule]:
    """The failpoints this process's environment arms (none when unset)."""
    spec = os.environ.get(ENV)
    return _parse(spec) if spec else {}


def check() -> None:
    """Raise :class:`FailpointError` (one line) when ``MLP_FAILPOINTS`` is malformed."""
    armed()


_passes: Counter = Counter()
_lock = threading.Lock()


def hit(name: str) -> None:
    """Pass the failpoint ``name``: act if the environment arms it for this pass."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    if name not in POINTS:
        raise FailpointError(f"hit({name!r}): no such failpoint; add it to POINTS")
    rule = _parse(spec).get(name)
    if rule is None:
        return
    with _lock:
        _passes[name] += 1
        n = _passes[name]
    if rule.nth is not None and n != rule.nth:
        return
    print(f"failpoint {name}: {rule.action} (pass {n}, pid {os.getpid()})", file=sys.stderr, flush=True)
    _act(name, rule.action)


def _act(name: str, action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FailpointError(f"failpoint {name} raised")
    elif action == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs in the main thread, as for Ctrl-C
        time.sleep(POLL_SECONDS)  # a pending handler runs at once; a deferred one at its block's end
    else:
        _pause(name)


def _pause(name: str) -> None:
    """Block until ``NAME.resume`` exists; a signal still interrupts the wait, as it would the
    work it stands in for."""
    where = Path(os.environ.get(DIR_ENV) or ".")
    marker, resume = where / f"{name}.{os.getpid()}.paused", where / f"{name}.resume"
    marker.write_text(f"{os.getpid()}\n")
    while not resume.exists():
        time.sleep(POLL_SECONDS)
