"""A worker: claim tickets and run trials until the budget, the time or the epochs are spent;
and ``sweep.workers=N``, N such workers as processes on this machine."""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from experiments import failpoints
from experiments.config import ConfigError, plural
from experiments.study import signals
from experiments.study.budget import claim, counts, done, trained_epochs
from experiments.study.context import SweepContext
from experiments.study.objectives import values_text
from experiments.study.parent import SweepError, best_trial
from experiments.study.samplers import exhausted
from experiments.study.trial import (
    GRACE_SECONDS,
    WORKER,
    Outcome,
    abandon,
    abandon_quietly,
    describe,
    run_trial,
    worker_name,
)


def work(ctx: SweepContext, study: optuna.Study, *, deadline: float | None) -> int:
    """Claim and run trials until the budget is spent; returns the number of failures."""
    try:
        failures = _work(ctx, study, deadline=deadline)
    except BaseException:
        ctx.outbox.drain(wait=GRACE_SECONDS / 2)  # the last trial's calls still on their way
        raise
    ctx.outbox.finish()  # send what the tracking server missed, or say what it lacks
    return failures


def _work(ctx: SweepContext, study: optuna.Study, *, deadline: float | None) -> int:
    failures, said = 0, None
    budget = ctx.cfg.sweep.epoch_budget
    while not exhausted(study):
        signals.check()
        if deadline is not None and time.monotonic() > deadline:
            print("sweep.timeout reached: no new trials are started", flush=True)
            return failures
        if epochs_spent(study, budget):
            print(f"sweep.epoch_budget={budget} trained epochs spent: no new trials are started",
                  flush=True)
            return failures
        optuna.storages.fail_stale_trials(study)
        out = claim_and_run(ctx, study)
        if out is None:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if running:  # others' trials may come back (failed, or their worker dead)
                said = say_waiting(ctx, running, said)
                time.sleep(min(2.0, ctx.cfg.sweep.heartbeat))
                continue
            return failures
        said = None
        trial, out = out
        failpoints.hit("trial.closed")
        progress(ctx, study, trial, out)
        failures += out.state == TrialState.FAIL
        if failures > ctx.cfg.sweep.max_failures:
            raise SweepError(f"{failures} trials failed in this run (sweep.max_failures="
                             f"{ctx.cfg.sweep.max_failures}); last error: {out.note}")
    print("the sampler has no new points (grid done): no new trials are started", flush=True)
    return failures


def claim_and_run(ctx: SweepContext, study: optuna.Study) -> tuple[optuna.Trial, Outcome] | None:
    """Claim a trial and run it; None when none is waiting. An interrupt from the claim on
    fails the trial and adds a ticket for it (see :func:`abandon`), wherever it lands."""
    trial = None
    try:
        with signals.deferred():  # the claim, its first beat and its worker: all or nothing
            trial = claim(study, ctx.cfg.sweep.storage, storage=ctx.storage, worker=WORKER)
        if trial is None:
            return None
        return trial, run_trial(ctx, study, trial)
    except KeyboardInterrupt:
        if trial is not None:  # a trial run_trial already failed is left as it is (abandon)
            abandon_quietly(ctx, study, trial.number, "interrupted (Ctrl-C or SIGTERM)")
        raise


WAIT_NOTE_AFTER = 5.0  # a wait shorter than this says nothing (another worker's last trial)
WAIT_NOTE_EVERY = 15.0  # then a line on what it waits for, at most this often (or on a change)


@dataclass
class Waiting:
    since: float
    numbers: set[int]
    said: float | None = None


def say_waiting(ctx: SweepContext, running: list[FrozenTrial], wait: Waiting | None) -> Waiting:
    """Say which running trials this worker waits for, and why, once the wait has lasted
    ``WAIT_NOTE_AFTER`` seconds; again when they change or every ``WAIT_NOTE_EVERY`` seconds."""
    numbers, now = {t.number for t in running}, time.monotonic()
    if wait is None:
        wait = Waiting(now, numbers)
    if now - wait.since < WAIT_NOTE_AFTER or (
            wait.said is not None and wait.numbers == numbers and now - wait.said < WAIT_NOTE_EVERY):
        return wait
    ages = ", ".join(f"trial {t.number} on {t.user_attrs.get('worker', '?')}, started "
                     f"{_age(t):.0f} s ago" for t in running[:3])
    stale = 3 * ctx.cfg.sweep.heartbeat
    print(f"no trial left to claim; waiting for {plural(len(running), 'running trial')} ({ages}"
          f"{', ...' if len(running) > 3 else ''}): its worker finishes it, or, if that worker "
          f"has stopped, the trial is failed and rerun here once its heartbeat is {stale} s old "
          f"(3 x sweep.heartbeat)", flush=True)
    wait.numbers, wait.said = numbers, now
    return wait


def _age(trial: FrozenTrial) -> float:
    start = trial.datetime_start
    return (datetime.datetime.now() - start).total_seconds() if start else 0.0


def epochs_spent(study: optuna.Study, budget: int | None) -> bool:
    """True once ``sweep.epoch_budget`` trained epochs are spent (never without a budget)."""
    return budget is not None and trained_epochs(study) >= budget


def progress(ctx: SweepContext, study: optuna.Study, trial: optuna.Trial, out: Outcome) -> None:
    """One line per finished trial: the budget, its state and score, and the study's best."""
    c, n = counts(study), ctx.cfg.sweep.n_trials
    if out.value is None:
        value = out.note
    elif isinstance(out.value, list):
        value = values_text(ctx.objectives, out.value)
    else:
        value = f"{ctx.metric} {out.value:.4f}"
    best = best_trial(study)
    if best is None:
        tail = "no complete trial yet"
    elif ctx.multi:
        tail = (f"front {plural(len(study.best_trials), 'trial')}, best {ctx.metric} "
                f"{best.values[0]:.4f} (trial {best.number})")
    else:
        tail = f"best {best.value:.4f} (trial {best.number})"
    print(f"[{done(c)}/{n}] trial {trial.number} {out.state.name}: {value} "
          f"in {out.seconds:.1f} s {describe(trial)} | {tail}", flush=True)


def deadline_of(timeout: float | None) -> float | None:
    """The monotonic time after which no trial starts (``sweep.timeout`` from now)."""
    return None if timeout is None else time.monotonic() + timeout


WORKER_GIB = 0.5  # what one spawned worker holds: measured ~0.39 GiB (torch, data, model)


def check_workers(workers: int) -> None:
    """Refuse more ``sweep.workers`` than this machine can run: one per CPU (a worker trains on
    its own CPU threads; more only share them) and what the available memory holds."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = _available_gib()
    limit = min(cpus, int(memory / WORKER_GIB) if memory is not None else cpus)
    if workers > max(1, limit):
        held = f", {memory:.1f} GiB available at ~{WORKER_GIB:g} GiB each" if memory is not None else ""
        raise ConfigError(f"sweep.workers={workers}: this machine runs at most {max(1, limit)} "
                          f"({plural(cpus, 'CPU')}{held}); to scale out, start sweeps on more "
                          "machines against one shared sweep.storage")


def _available_gib() -> float | None:
    """MemAvailable from /proc/meminfo in GiB (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def run_workers(ctx: SweepContext, study: optuna.Study,
                target: Callable[[list[str], int, int], None]) -> None:
    """``sweep.workers`` processes, each running ``target(overrides, index, threads)``; the CPU
    threads are split between them. Ctrl-C or SIGTERM here reaches every worker; one that has
    not stopped within ``GRACE_SECONDS`` is killed and its trials failed and re-enqueued. A worker
    that stops with an error is a :class:`SweepError`."""
    n = ctx.cfg.sweep.workers
    threads = max(1, (os.cpu_count() or 1) // n)
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=target, args=(ctx.overrides, i + 1, threads)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        _stop(ctx, study, procs)
        raise
    crashed = [f"worker {i + 1} (exit code {p.exitcode})" for i, p in enumerate(procs) if p.exitcode]
    if crashed:  # its trial is failed by the heartbeat and rerun; the user must hear of it
        raise SweepError(f"{', '.join(crashed)} stopped with an error (see its output above); "
                         "rerun the same command to resume the study")


def _stop(ctx: SweepContext, study: optuna.Study, procs: list) -> None:
    """Pass the interrupt on (a worker that already has it ignores it), wait, then kill."""
    print("stopping the workers: each closes its trial and run...", file=sys.stderr, flush=True)
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may end in between
                os.kill(p.pid, signal.SIGTERM)
    end = time.monotonic() + GRACE_SECONDS
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
    stuck = [p for p in procs if p.is_alive()]
    for p in stuck:
        p.kill()
        p.join()
    names = {worker_name(p.pid) for p in stuck}
    with contextlib.suppress(Exception):  # else the heartbeat fails them on the next run
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker") in names:
                abandon(ctx, study, t.number, "its worker did not stop within "
                        f"{GRACE_SECONDS:g} s of the interrupt and was killed")
