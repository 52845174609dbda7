"""``python -m experiments.sweep [overrides]``: an Optuna study of MLP trials, tracked in MLflow.

Examples:
  python -m experiments.sweep                                   # the default study (search=default)
  python -m experiments.sweep +experiment=hidden_units          # a ready experiment
  python -m experiments.sweep search=lr sweep.sampler=random sweep.n_trials=30 sweep.workers=2

``sweep.n_trials`` is the study's total: rerunning the same command resumes the study and runs
only the trials that are missing. Ctrl-C marks the running trial failed (its MLflow run KILLED)
and exits 130; the next run picks up from there. Exit code 2: bad configuration or search space,
or an unreachable storage or tracking server, reported before any study or run is created.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
import uuid

import optuna
from optuna.trial import TrialState

from experiments import tracking
from experiments.cli import USAGE_ERRORS, fail, one_line, quiet_libraries
from experiments.config import Config, compose_config, to_config
from experiments.parent import SweepError, attach_parent, best_trial, finalize
from experiments.space import SpaceError, build_space, extremes, grid
from experiments.study import (
    DONE,
    claim,
    counts,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    quiet_optuna,
    serialised,
    top_up,
)
from experiments.trial import SweepContext, describe, run_trial


def prepare(overrides: list[str]) -> SweepContext:
    """Compose and check everything that needs no storage: config, space, sampler fit."""
    base = compose_config(overrides)
    cfg = to_config(base)
    space = build_space(cfg.search, base)
    if space.is_empty:
        raise SpaceError("the search space is empty: pick one with search=NAME or "
                         "+experiment=NAME (see conf/search/ and conf/experiment/)")
    for ends in extremes(space):  # a range reaching outside the valid values fails here
        to_config(compose_config([*overrides, *ends]))
    if cfg.sweep.sampler == "grid":
        size = math.prod(len(v) for v in grid(space).values())
        if cfg.sweep.n_trials > size:
            print(f"note: the grid has {size} points; sweep.n_trials={cfg.sweep.n_trials} -> {size}")
            cfg.sweep.n_trials = size
    return SweepContext(cfg=cfg, overrides=list(overrides), base=base, space=space,
                        client=None, experiment_id="")  # type: ignore[arg-type]


def connect(ctx: SweepContext, *, worker: int = 0) -> tuple[optuna.Study, bool]:
    """Open the storage and tracking server (one clear line if either is unreachable)."""
    cfg = ctx.cfg
    problem = tracking.unreachable(cfg.mlflow.tracking_uri)  # seconds, not MLflow's minutes of retries
    if problem:
        raise ConnectionError(f"cannot reach mlflow.tracking_uri={tracking.mask_url(cfg.mlflow.tracking_uri)}"
                              f": {tracking.mask_url(problem)}")
    try:
        ctx.client, ctx.experiment_id = tracking.client_for(cfg)
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the user needs the URI
        raise ConnectionError(f"cannot use mlflow.tracking_uri={tracking.mask_url(cfg.mlflow.tracking_uri)}"
                              f": {tracking.mask_url(one_line(exc))[:300]}") from None
    ctx.outbox = tracking.Outbox(cfg.mlflow.tracking_uri)
    try:
        storage = open_storage(ctx.cfg.sweep.storage, heartbeat=ctx.cfg.sweep.heartbeat,
                               on_stale=lambda s, t: _close_stale_run(ctx, t))
        sampler = make_sampler(cfg.sweep, ctx.space, worker=worker)
        return open_study(cfg.sweep, storage, sampler, make_pruner(cfg.sweep, epochs=cfg.train.epochs))
    except Exception as exc:  # noqa: BLE001
        reason = one_line(getattr(exc, "orig", None) or exc)  # the driver's words, not SQLAlchemy's
        raise ConnectionError(f"cannot open sweep.storage={tracking.mask_url(cfg.sweep.storage)}: "
                              f"{tracking.mask_url(reason)[:300]}") from None


def _close_stale_run(ctx: SweepContext, trial: optuna.trial.FrozenTrial) -> None:
    run_id, what = trial.user_attrs.get("mlflow_run_id"), f"trial {trial.number}: close dead run"
    if run_id:
        ctx.outbox.call(what, ctx.client.set_tag, run_id, "optuna.state", "FAIL")
        ctx.outbox.call(what, ctx.client.set_tag, run_id, "error",
                        "worker died (heartbeat stale); trial re-enqueued")
        ctx.outbox.call(what, tracking.end_run, ctx.client, run_id, tracking.FAILED)
    print(f"trial {trial.number}: its worker stopped beating; failed and re-enqueued", flush=True)


def work(ctx: SweepContext, study: optuna.Study, *, deadline: float | None) -> int:
    """Claim and run trials until the budget is spent; returns the number of failures."""
    study._thread_local.in_optimize_loop = True  # noqa: SLF001 - lets a sampler call study.stop()
    try:
        failures = _work(ctx, study, deadline=deadline)
    finally:
        study._thread_local.in_optimize_loop = False  # noqa: SLF001
    ctx.outbox.finish()  # send what the tracking server missed, or say what it lacks
    return failures


def _work(ctx: SweepContext, study: optuna.Study, *, deadline: float | None) -> int:
    failures = 0
    budget = ctx.cfg.sweep.epoch_budget
    while not study._stop_flag:  # noqa: SLF001 - set when GridSampler has visited every point
        if deadline is not None and time.monotonic() > deadline:
            print("sweep.timeout reached: no new trials are started", flush=True)
            return failures
        if _epochs_spent(study, budget):
            print(f"sweep.epoch_budget={budget} trained epochs spent: no new trials are started",
                  flush=True)
            return failures
        optuna.storages.fail_stale_trials(study)
        trial = claim(study, ctx.cfg.sweep.storage)
        if trial is None:
            if counts(study)[TrialState.RUNNING]:
                time.sleep(min(2.0, ctx.cfg.sweep.heartbeat))  # others' trials may come back
                continue
            return failures
        out = run_trial(ctx, study, trial)
        _progress(ctx, study, trial, out)
        failures += out.state == TrialState.FAIL
        if failures > ctx.cfg.sweep.max_failures:
            raise SweepError(f"{failures} trials failed in this run (sweep.max_failures="
                             f"{ctx.cfg.sweep.max_failures}); last error: {out.note}")
    print("the sampler has no new points (grid done): no new trials are started", flush=True)
    return failures


def trained_epochs(study: optuna.Study) -> int:
    """Epochs trained by every trial so far (one reported value per epoch)."""
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))


def _epochs_spent(study: optuna.Study, budget: int | None) -> bool:
    return budget is not None and trained_epochs(study) >= budget


def _progress(ctx: SweepContext, study: optuna.Study, trial: optuna.Trial, out) -> None:
    c, n = counts(study), ctx.cfg.sweep.n_trials
    value = f"{ctx.cfg.sweep.metric} {out.value:.4f}" if out.value is not None else out.note
    best = best_trial(study)
    tail = f"best {best.value:.4f} (trial {best.number})" if best else "no complete trial yet"
    print(f"[{sum(c[s] for s in DONE)}/{n}] trial {trial.number} {out.state.name}: {value} "
          f"in {out.seconds:.1f} s {describe(trial)} | {tail}", flush=True)


def _should_finalize(study: optuna.Study, cfg: Config, *, timed_out: bool) -> bool:
    """True for exactly one process once the budget is done or the time is up (workers may
    finish together); a later run that adds trials finalises the study again."""
    c = counts(study)
    done = sum(c[s] for s in DONE)
    spent = timed_out or study._stop_flag or _epochs_spent(study, cfg.sweep.epoch_budget)  # noqa: SLF001
    if c[TrialState.RUNNING] or (not spent and (done < cfg.sweep.n_trials or c[TrialState.WAITING])):
        return False
    with serialised(cfg.sweep.storage, study.study_name):
        if study.user_attrs.get("finalized_at") == done:
            return False
        token = uuid.uuid4().hex
        study.set_user_attr("finalizer", token)
        time.sleep(0.3)
        if study.user_attrs.get("finalizer") != token:
            return False
        study.set_user_attr("finalized_at", done)
    return True


def start(ctx: SweepContext, *, worker: int = 0) -> optuna.Study:
    study, created = connect(ctx, worker=worker)
    if not created and worker == 0 and ctx.cfg.sweep.sampler != "qmc":
        study.sampler.reseed_rng()  # a twin process on the same seed would repeat its samples
    ctx.parent_run_id = attach_parent(ctx, study, created=created)
    return study


def _worker(overrides: list[str], index: int, threads: int) -> None:
    """A worker process of ``sweep.workers=N``: attach to the study and run trials."""
    import torch

    torch.set_num_threads(threads)
    quiet_optuna()
    ctx = prepare(overrides)
    study = start(ctx, worker=index)
    try:
        work(ctx, study, deadline=_deadline(ctx.cfg))
    except KeyboardInterrupt:
        sys.exit(130)


def _deadline(cfg: Config) -> float | None:
    return None if cfg.sweep.timeout is None else time.monotonic() + cfg.sweep.timeout


def run_workers(ctx: SweepContext, study: optuna.Study) -> None:
    n = ctx.cfg.sweep.workers
    threads = max(1, (os.cpu_count() or 1) // n)
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_worker, args=(ctx.overrides, i + 1, threads)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join()
        raise
    crashed = [f"worker {i + 1} (exit code {p.exitcode})" for i, p in enumerate(procs) if p.exitcode]
    if crashed:  # its trial is failed by the heartbeat and rerun; the user must hear of it
        raise SweepError(f"{', '.join(crashed)} stopped with an error (see its output above); "
                         "rerun the same command to resume the study")


def sweep(ctx: SweepContext) -> dict[str, float]:
    """Run the study to its budget and finish it (plots, best config, one test evaluation)."""
    cfg = ctx.cfg
    study = start(ctx)
    with serialised(cfg.sweep.storage, study.study_name):  # starting together, add the budget once
        added = top_up(study, cfg.sweep.n_trials)
    c, deadline = counts(study), _deadline(cfg)
    print(f"study {study.study_name!r} on {tracking.mask_url(cfg.sweep.storage)}: "
          f"{sum(c[s] for s in DONE)}/{cfg.sweep.n_trials} trials done, {added} added; "
          f"sampler {cfg.sweep.sampler}, pruner {cfg.sweep.pruner}, {cfg.sweep.workers} worker(s); "
          f"MLflow {tracking.mask_url(cfg.mlflow.tracking_uri)} run {ctx.parent_run_id}", flush=True)
    try:
        if cfg.sweep.workers > 1:
            run_workers(ctx, study)
        else:
            work(ctx, study, deadline=deadline)
    except KeyboardInterrupt:
        tracking.end_run(ctx.client, ctx.parent_run_id, tracking.KILLED)
        raise
    timed_out = deadline is not None and time.monotonic() > deadline
    if _should_finalize(study, cfg, timed_out=timed_out):
        return _finalize(ctx, study)
    if study.user_attrs.get("finalized_at") == sum(counts(study)[s] for s in DONE):
        best = best_trial(study)
        print(f"study already complete{f': best trial {best.number}, {best.value:.4f}' if best else ''}; "
              f"raise sweep.n_trials to run more")
        tracking.end_run(ctx.client, ctx.parent_run_id, tracking.FINISHED)
    else:
        print("study not finished (timeout, failures or other workers): rerun the command to resume")
    return {}


def _finalize(ctx: SweepContext, study: optuna.Study) -> dict[str, float]:
    """``finalize``, unless the tracking server is unreachable: then the study stays open for it."""
    try:
        if ctx.outbox.queue:
            raise ConnectionError("the tracking server did not answer")
        return finalize(ctx, study, retrain=ctx.cfg.sweep.retrain_best)
    except Exception as exc:  # noqa: BLE001 - only an unreachable server is expected here
        if not tracking.transient(exc):
            raise
        study.set_user_attr("finalized_at", None)  # the next run of the command finalises
        print(f"warning: every trial is done in Optuna, but the study's parent MLflow run could not "
              f"be finished ({tracking.mask_url(one_line(exc))[:200]}); rerun the same command once "
              "the tracking server answers", file=sys.stderr, flush=True)
        return {}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    quiet_optuna()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # docker stop: like Ctrl-C
    try:
        ctx = prepare(args)
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


if __name__ == "__main__":
    sys.exit(main())
