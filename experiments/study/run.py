"""A sweep from start to end: check the input, connect, add the budget, run the workers and
finish the study; :func:`run_sweep` is the whole ``python -m experiments.sweep`` as one call."""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import signal
import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from experiments import failpoints, tracking
from experiments.cli import USAGE_ERRORS, fail, one_line, quiet_libraries
from experiments.config import plural
from experiments.stores import mask_url
from experiments.study import signals
from experiments.study.budget import counts, done, top_up
from experiments.study.context import SweepContext, connect, prepare
from experiments.study.finish import already_finished, finish, remind
from experiments.study.identity import IdentityError
from experiments.study.parent import SweepError, attach_parent, close_finished
from experiments.study.space import SpaceError
from experiments.study.storage import quiet_optuna, serialised
from experiments.study.worker import (
    GRACE_SECONDS,
    check_workers,
    deadline_of,
    epochs_spent,
    run_workers,
    work,
)
from experiments.training import setup_torch
from mlp.data import DataError


def start(ctx: SweepContext, *, worker: int = 0) -> optuna.Study:
    """Connect to the stores and attach to (or create) the study and its parent run."""
    study, created = connect(ctx, worker=worker)
    if not created and worker == 0 and ctx.cfg.sweep.sampler != "qmc":
        study.sampler.reseed_rng()  # a twin process on the same seed would repeat its samples
    ctx.parent_run_id = attach_parent(ctx, study, created=created)
    return study


def worker_process(overrides: list[str], index: int, threads: int) -> None:
    """A spawned worker of ``sweep.workers=N``: attach to the study and run trials. It stops on
    SIGINT or SIGTERM like the main process; its errors are one line, never a traceback."""
    signals.install(exit_within=2 * GRACE_SECONDS)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 PID: where it is, on stderr
    signals.stop_with_parent(multiprocessing.parent_process().pid)
    setup_torch(threads)
    quiet_libraries()
    quiet_optuna()
    try:
        ctx = prepare(overrides)
        study = start(ctx, worker=index)
        work(ctx, study, deadline=deadline_of(ctx.cfg.sweep.timeout))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the main process reports the exit code
        print(f"error: worker {index}: {mask_url(one_line(exc))[:500]}", file=sys.stderr, flush=True)
        sys.exit(1)


def sweep(ctx: SweepContext) -> dict[str, Any]:
    """Run the study to its budget and finish it (plots, best config, one test evaluation).
    However this process stops, the study's parent run is not left RUNNING by it."""
    cfg = ctx.cfg
    study = start(ctx)
    try:
        return _sweep(ctx, study)
    except KeyboardInterrupt:
        close_parent(ctx, tracking.KILLED, "interrupted (Ctrl-C or SIGTERM); rerun the same "
                                           "command to resume")
        raise
    except BaseException as exc:
        close_parent(ctx, tracking.FAILED, f"{cfg.sweep.study_name}: {one_line(exc)}")
        raise


def _sweep(ctx: SweepContext, study: optuna.Study) -> dict[str, Any]:
    cfg = ctx.cfg
    with serialised(cfg.sweep.storage, study.study_name):  # starting together, add the budget once
        added = top_up(study, cfg.sweep.n_trials)
    c, deadline = counts(study), deadline_of(cfg.sweep.timeout)
    print(f"study {study.study_name!r} on {mask_url(cfg.sweep.storage)}: "
          f"{done(c)}/{cfg.sweep.n_trials} trials done, {added} added; "
          f"sampler {cfg.sweep.sampler}, pruner {cfg.sweep.pruner}, {plural(cfg.sweep.workers, 'worker')}; "
          f"MLflow {mask_url(cfg.mlflow.tracking_uri)} run {ctx.parent_run_id}", flush=True)
    print(ctx.precision_line, flush=True)
    for line in ctx.quick_cut:
        print(f"quick form: {line}", flush=True)
    if already_finished(study) and not (c[TrialState.WAITING] or c[TrialState.RUNNING]):
        print("study already complete: raise sweep.n_trials to run more")
        close_finished(ctx, ctx.parent_run_id)
        remind(ctx, study)
        return {}
    if cfg.sweep.workers > 1:
        run_workers(ctx, study, worker_process)
    else:
        work(ctx, study, deadline=deadline)
    spent = ((deadline is not None and time.monotonic() > deadline)
             or epochs_spent(study, cfg.sweep.epoch_budget))
    summary = finish(ctx, study, spent=spent)
    if summary is None:
        print("study not finished (other processes are running its trials or finishing it): "
              "rerun the command to resume", flush=True)
    return summary or {}


def close_parent(ctx: SweepContext, status: str, reason: str) -> None:
    """Close the parent run with the reason as a tag; quietly, when the server is gone too."""
    with contextlib.suppress(Exception):
        ctx.client.set_tag(ctx.parent_run_id, "stopped", mask_url(reason)[:5000])
        tracking.end_run(ctx.client, ctx.parent_run_id, status)


def run_sweep(overrides: list[str]) -> int:
    """The sweep command: check, run, finish; one-line errors with the documented exit codes
    (2 bad input, another experiment under the study's name or an unreachable store, 1 a study
    that cannot go on, 130 interrupted)."""
    try:
        failpoints.check()
    except failpoints.FailpointError as exc:
        fail(str(exc))
    quiet_libraries()
    quiet_optuna()
    setup_torch()
    signals.install()  # Ctrl-C and docker stop's SIGTERM alike
    try:
        ctx = prepare(overrides)
        check_workers(ctx.cfg.sweep.workers)
        sweep(ctx)
    except (*USAGE_ERRORS, SpaceError, IdentityError, DataError) as exc:
        fail(mask_url(one_line(exc)))
    except ConnectionError as exc:
        fail(str(exc))
    except SweepError as exc:
        fail(mask_url(str(exc)), code=1)
    except KeyboardInterrupt:
        print("interrupted: the running trials are marked failed and their MLflow runs KILLED; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
