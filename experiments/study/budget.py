"""A study's trial budget, kept in the storage as WAITING "tickets", and the worker's heartbeat.

``sweep.n_trials`` is the number of trials that end COMPLETE or PRUNED. The process that creates
(or grows) the study adds the missing tickets (``Study.add_trial``); every worker claims
one with ``Study.ask``, which takes a WAITING trial before it would create a new one. Claims
happen one at a time under the store's lock, and only while a ticket is waiting, so N workers
never run more than the budget, and a rerun resumes with exactly the trials that are missing.
A failed trial is replaced by a fresh ticket; the trial of a worker that died stops beating, is
failed by ``fail_stale_trials`` and re-enqueued with its parameters.

Only public Optuna APIs are used; ``tests/experiments/study/test_budget.py`` pins the behaviour
of each one that these guarantees rest on, so an Optuna upgrade that changes it fails there.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import Iterator

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from experiments.stores import store_lock

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
TICKET = "ticket"


def counts(study: optuna.Study) -> Counter:
    """Trials per state."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def done(c: Counter) -> int:
    """Trials that count towards the budget (COMPLETE or PRUNED), from :func:`counts`."""
    return sum(c[s] for s in DONE)


def add_tickets(study: optuna.Study, n: int, *, reason: str = "budget") -> None:
    """Add ``n`` WAITING trials without parameters; each is one trial of the budget. (Not
    ``enqueue_trial({})``: its empty ``fixed_params`` make the grid sampler refuse the trial.)"""
    for _ in range(n):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING,
                                                  user_attrs={TICKET: reason}))


def top_up(study: optuna.Study, n_trials: int) -> int:
    """Enqueue the tickets missing to reach ``n_trials`` done-or-in-flight trials."""
    optuna.storages.fail_stale_trials(study)
    c = counts(study)
    missing = n_trials - sum(c[s] for s in (*DONE, TrialState.RUNNING, TrialState.WAITING))
    add_tickets(study, max(0, missing))
    return max(0, missing)


def claim(study: optuna.Study, url: str) -> optuna.Trial | None:
    """Take one WAITING trial (a ticket or a retry) and start it, or None when none is waiting.

    Under the store's lock: SQLite ignores the ``SELECT ... FOR UPDATE`` behind ``Study.ask``'s
    WAITING -> RUNNING update, and ``ask`` would create a trial beyond the budget if another
    worker took the last ticket between the check and the ask."""
    with store_lock(url, "claim"):
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        with warnings.catch_warnings():  # "heartbeat ... supposed to be used with optimize":
            warnings.simplefilter("ignore", UserWarning)  # this loop beats itself (heartbeat())
            return study.ask()


@contextlib.contextmanager
def heartbeat(storage: RDBStorage | None, study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Record the trial's heartbeat every ``heartbeat_interval`` seconds while the block runs
    (what ``Study.optimize`` does for its own trials), from the claim on: a trial whose worker
    dies before its first beat would never be seen as stale."""
    interval = storage.get_heartbeat_interval() if storage is not None else None
    if interval is None:
        yield
        return
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), trial.number)
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trained_epochs(study: optuna.Study) -> int:
    """Epochs trained by every trial so far (one reported value per epoch)."""
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))
