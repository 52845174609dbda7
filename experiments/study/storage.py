"""The Optuna storage and the study in it: opened under the store's locks, created once."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from experiments.config import SweepConfig, objectives
from experiments.stores import backend_of, schema_lock, sqlite_path, store_lock

# Seconds a SQLite write waits for another process's write (sqlite3's default, 5 s, is too
# short for several workers on a busy machine: the loser would fail its trial).
SQLITE_BUSY_SECONDS = 60.0


def open_storage(url: str, *, heartbeat: int | None = None,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> RDBStorage:
    """An RDB storage (SQLite, PostgreSQL, MySQL), its tables created under the store's schema
    lock, so processes that open a fresh store together all succeed. With ``heartbeat``, trials of
    dead workers are failed and re-enqueued (``on_stale`` runs first, e.g. to close their runs)."""
    engine: dict = {"pool_pre_ping": True}
    if backend_of(url) in ("postgresql", "mysql"):
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


def open_study(cfg: SweepConfig, storage: RDBStorage, sampler: BaseSampler,
               pruner: BasePruner) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when it exists; the flag says whether this call created it.
    Its metrics are named in Optuna (optuna-dashboard and the ``optuna`` CLI show ``val/acc``,
    not "Objective 0"); a study created before they were is named on load."""
    objs = objectives(cfg)
    try:
        study = optuna.create_study(study_name=cfg.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, directions=[d for _, d in objs])
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=sampler,
                                  pruner=pruner)
        created = False
    if study.metric_names is None and len(study.directions) == len(objs):
        study.set_metric_names([n for n, _ in objs])
    return study, created


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would duplicate the sweep's own progress output."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("alembic").setLevel(logging.WARNING)
