"""A sweep from start to end: check the input, connect, add the budget, run the workers and
finish the study; :func:`run_sweep` is the whole ``python -m experiments.sweep`` as one call."""

from __future__ import annotations

import signal
import sys
import time

import optuna

from experiments import tracking
from experiments.cli import USAGE_ERRORS, fail, one_line, quiet_libraries
from experiments.stores import mask_url
from experiments.study.budget import counts, done, top_up
from experiments.study.context import SweepContext, connect, prepare
from experiments.study.finish import already_finished, finish, should_finish
from experiments.study.parent import SweepError, attach_parent, best_trial
from experiments.study.space import SpaceError
from experiments.study.storage import quiet_optuna, serialised
from experiments.study.worker import deadline_of, epochs_spent, run_workers, work
from experiments.training import setup_torch


def start(ctx: SweepContext, *, worker: int = 0) -> optuna.Study:
    """Connect to the stores and attach to (or create) the study and its parent run."""
    study, created = connect(ctx, worker=worker)
    if not created and worker == 0 and ctx.cfg.sweep.sampler != "qmc":
        study.sampler.reseed_rng()  # a twin process on the same seed would repeat its samples
    ctx.parent_run_id = attach_parent(ctx, study, created=created)
    return study


def worker_process(overrides: list[str], index: int, threads: int) -> None:
    """A spawned worker of ``sweep.workers=N``: attach to the study and run trials."""
    setup_torch(threads)
    quiet_optuna()
    ctx = prepare(overrides)
    study = start(ctx, worker=index)
    try:
        work(ctx, study, deadline=deadline_of(ctx.cfg.sweep.timeout))
    except KeyboardInterrupt:
        sys.exit(130)


def sweep(ctx: SweepContext) -> dict[str, float]:
    """Run the study to its budget and finish it (plots, best config, one test evaluation)."""
    cfg = ctx.cfg
    study = start(ctx)
    with serialised(cfg.sweep.storage, study.study_name):  # starting together, add the budget once
        added = top_up(study, cfg.sweep.n_trials)
    c, deadline = counts(study), deadline_of(cfg.sweep.timeout)
    print(f"study {study.study_name!r} on {mask_url(cfg.sweep.storage)}: "
          f"{done(c)}/{cfg.sweep.n_trials} trials done, {added} added; "
          f"sampler {cfg.sweep.sampler}, pruner {cfg.sweep.pruner}, {cfg.sweep.workers} worker(s); "
          f"MLflow {mask_url(cfg.mlflow.tracking_uri)} run {ctx.parent_run_id}", flush=True)
    try:
        if cfg.sweep.workers > 1:
            run_workers(ctx, worker_process)
        else:
            work(ctx, study, deadline=deadline)
    except KeyboardInterrupt:
        tracking.end_run(ctx.client, ctx.parent_run_id, tracking.KILLED)
        raise
    spent = ((deadline is not None and time.monotonic() > deadline)
             or epochs_spent(study, cfg.sweep.epoch_budget))
    if should_finish(study, cfg, spent=spent):
        return finish(ctx, study)
    if already_finished(study):
        best = best_trial(study)
        print(f"study already complete{f': best trial {best.number}, {best.value:.4f}' if best else ''}; "
              f"raise sweep.n_trials to run more")
        tracking.end_run(ctx.client, ctx.parent_run_id, tracking.FINISHED)
    else:
        print("study not finished (timeout, failures or other workers): rerun the command to resume")
    return {}


def run_sweep(overrides: list[str]) -> int:
    """The sweep command: check, run, finish; one-line errors with the documented exit codes
    (2 bad input or unreachable store, 1 a study that cannot go on, 130 interrupted)."""
    quiet_libraries()
    quiet_optuna()
    setup_torch()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # docker stop: like Ctrl-C
    try:
        ctx = prepare(overrides)
    except (*USAGE_ERRORS, SpaceError) as exc:
        fail(one_line(exc))
    try:
        sweep(ctx)
    except ConnectionError as exc:
        fail(str(exc))
    except SweepError as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        print("interrupted: the running trial is marked failed and its MLflow run KILLED; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
