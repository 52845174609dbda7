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
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from experiments import failpoints
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


def claim(study: optuna.Study, url: str, *, storage: RDBStorage | None = None,
          worker: str | None = None) -> optuna.Trial | None:
    """Take one WAITING trial (a ticket or a retry) and start it, or None when none is waiting.
    The claimed trial has its first heartbeat (with ``storage``'s heartbeat on) and its
    ``worker`` recorded before this returns.

    Under the store's lock: SQLite ignores the ``SELECT ... FOR UPDATE`` behind ``Study.ask``'s
    WAITING -> RUNNING update, and ``ask`` would create a trial beyond the budget if another
    worker took the last ticket between the check and the ask. A trial whose worker died between
    its claim and its first beat has no heartbeat, so Optuna would never see it stale: it gets a
    beat here (:func:`adopt_unbeaten`), goes stale like any other and is failed and rerun."""
    with store_lock(url, "claim"):
        adopt_unbeaten(storage, study)
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        with warnings.catch_warnings():  # "heartbeat ... supposed to be used with optimize":
            warnings.simplefilter("ignore", UserWarning)  # this loop beats itself (heartbeat())
            trial = study.ask()
        failpoints.hit("worker.claim")
        if storage is not None and storage.get_heartbeat_interval() is not None:
            storage.record_heartbeat(trial_id_of(storage, study, trial.number))
        if worker is not None:
            trial.set_user_attr("worker", worker)
        return trial


def trial_id_of(storage: RDBStorage, study: optuna.Study, number: int) -> int:
    return storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)


# Optuna's stale check skips RUNNING trials without a heartbeat row (RDBStorage has no public
# query for them); read through the storage's public engine, pinned in test_budget.py.
_UNBEATEN = sqlalchemy.text(
    "SELECT t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id "
    "WHERE s.study_name = :name AND t.state = 'RUNNING' AND NOT EXISTS "
    "(SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)")


def adopt_unbeaten(storage: RDBStorage | None, study: optuna.Study) -> int:
    """Give every RUNNING trial that never had a heartbeat one now, so its staleness is counted
    from here; returns how many. Called under the claim lock, which every first beat is taken
    under too, so no live worker is between its claim and its first beat."""
    if storage is None or storage.get_heartbeat_interval() is None:
        return 0
    with storage.engine.connect() as conn:
        ids = [row[0] for row in conn.execute(_UNBEATEN, {"name": study.study_name})]
    for trial_id in ids:
        storage.record_heartbeat(trial_id)
    return len(ids)


@contextlib.contextmanager
def heartbeat(storage: RDBStorage | None, study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Record the trial's heartbeat every ``heartbeat_interval`` seconds while the block runs
    (what ``Study.optimize`` does for its own trials); the first beat was recorded by the claim."""
    interval = storage.get_heartbeat_interval() if storage is not None else None
    if interval is None:
        yield
        return
    trial_id = trial_id_of(storage, study, trial.number)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trained_epochs(study: optuna.Study) -> int:
    """Epochs trained by every trial so far (one reported value per epoch; a trial of several
    metrics, which Optuna does not report, records its ``epochs``)."""
    return sum(len(t.intermediate_values) or int(t.user_attrs.get("epochs", 0))
               for t in study.get_trials(deepcopy=False))
