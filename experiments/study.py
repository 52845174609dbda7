"""The Optuna side of a sweep: storage, sampler, pruner, the study and its trial budget.

A study's budget is ``sweep.n_trials`` trials that end COMPLETE or PRUNED. It is kept as
WAITING "tickets" in the storage: the process that creates (or grows) the study enqueues
the missing ones, and every worker claims tickets with the storage's atomic WAITING ->
RUNNING update, so N workers never run more than the budget, and a rerun resumes with
exactly the trials that are missing. A failed trial is replaced by a fresh ticket; a trial
whose worker died is failed by the heartbeat and re-enqueued with its parameters.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from experiments.config import CHOICES, SweepConfig
from experiments.space import Space, grid
from experiments.stores import schema_lock, sqlite_path, store_lock

SAMPLERS, PRUNERS = CHOICES["sweep.sampler"], CHOICES["sweep.pruner"]  # checked in validate()
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
TICKET = "ticket"
# Seconds a SQLite write waits for another process's write (sqlite3's default, 5 s, is too
# short for several workers on a busy machine: the loser would fail its trial).
SQLITE_BUSY_SECONDS = 60.0


def direction_of(metric: str) -> str:
    """Losses are minimised, everything else (accuracies) maximised."""
    return "minimize" if metric.endswith("loss") else "maximize"


def open_storage(url: str, *, heartbeat: int | None = None,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> RDBStorage:
    """An RDB storage (SQLite, PostgreSQL, MySQL), its tables created under the store's schema
    lock, so processes that open a fresh store together all succeed. With ``heartbeat``, trials of
    dead workers are failed and re-enqueued (``on_stale`` runs first, e.g. to close their runs)."""
    engine: dict = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine["connect_args"] = {"connect_timeout": 10}  # an unroutable host fails in seconds
    if sqlite_path(url) is not None:
        engine["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
    beat: dict = {}
    if heartbeat is not None:
        retry = RetryHeartbeatStaleTrialCallback(max_retry=3)

        def stale(study: optuna.Study, trial: FrozenTrial) -> None:
            if on_stale is not None:
                on_stale(study, trial)
            retry(study, trial)

        beat = {"heartbeat_interval": heartbeat, "grace_period": 3 * heartbeat,
                "heartbeat_stale_trial_callback": stale}
    with schema_lock(url):
        return RDBStorage(url, engine_kwargs=engine, **beat)


def serialised(url: str, study_name: str) -> contextlib.AbstractContextManager[None]:
    """One process at a time, across machines on PostgreSQL (an advisory lock on the study's
    name), across processes on SQLite (its lock file): topping up the budget and electing the
    finaliser must not interleave."""
    return store_lock(url, f"study/{study_name}")


def make_sampler(cfg: SweepConfig, space: Space, *, worker: int = 0) -> BaseSampler:
    """A seeded sampler; workers get ``seed + worker`` so their random streams differ."""
    seed = cfg.seed + worker
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=min(10, max(2, cfg.n_trials // 4)))
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "grid":
        return optuna.samplers.GridSampler(grid(space), seed=seed)
    if cfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
    if cfg.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if cfg.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"sweep.sampler={cfg.sampler!r}: expected one of {', '.join(SAMPLERS)}")


def make_pruner(cfg: SweepConfig, *, epochs: int) -> BasePruner:
    """The pruner; ``median`` and ``percentile`` wait for a few finished trials and one epoch."""
    startup = min(5, max(1, cfg.n_trials // 5))
    if cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=1)
    if cfg.pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    if cfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise ValueError(f"sweep.pruner={cfg.pruner!r}: expected one of {', '.join(PRUNERS)}")


def open_study(cfg: SweepConfig, storage: RDBStorage, sampler: BaseSampler,
               pruner: BasePruner) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when it exists; the flag says whether this call created it."""
    try:
        study = optuna.create_study(study_name=cfg.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction=direction_of(cfg.metric))
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=sampler,
                                  pruner=pruner)
        return study, False


def counts(study: optuna.Study) -> Counter:
    """Trials per state."""
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def add_tickets(study: optuna.Study, n: int, *, reason: str = "budget") -> None:
    """Enqueue ``n`` empty WAITING trials; each becomes one trial of the budget."""
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
    """Atomically take one WAITING trial (a ticket or a retry) and start it, or None.

    The storage's WAITING -> RUNNING update reads the trial ``FOR UPDATE``, which PostgreSQL and
    MySQL honour and SQLite ignores: there, two workers could both take one ticket, so a SQLite
    claim holds the store's lock."""
    lock = store_lock(url, "claim") if sqlite_path(url) is not None else contextlib.nullcontext()
    storage = study._storage  # noqa: SLF001 - the storage's atomic state change is the point
    with lock:
        for t in storage.get_all_trials(study._study_id, deepcopy=False,  # noqa: SLF001
                                        states=(TrialState.WAITING,)):
            try:
                if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
                    return optuna.Trial(study, t._trial_id)  # noqa: SLF001
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
    return None


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would duplicate the sweep's own progress output."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("alembic").setLevel(logging.WARNING)
