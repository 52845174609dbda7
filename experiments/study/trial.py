"""One Optuna trial: compose its config, train it, report every epoch, log it as a child run."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from experiments import failpoints, tracking
from experiments.cli import chain, epoch_progress, one_line
from experiments.config import short_name
from experiments.stores import mask_url
from experiments.study import runs, signals
from experiments.study.budget import add_tickets, heartbeat, trial_id_of
from experiments.study.context import SweepContext
from experiments.study.objectives import Objectives, aggregate, fixed_metrics, objective_key
from experiments.study.parent import best_trial
from experiments.study.runs import outcome_of, run_name
from experiments.study.space import sample
from experiments.training import train_config
from mlp import DivergedError


def worker_name(pid: int) -> str:
    """How a trial's ``worker`` attribute names the process that runs it."""
    return f"{socket.gethostname()}:{pid}"


WORKER = worker_name(os.getpid())
PROGRESS_EVERY = 10.0  # seconds between a long trial's progress lines when output is not a terminal
GRACE_SECONDS = 30.0  # how long a worker has to stop after the interrupt before it is killed


@dataclass
class Outcome:
    state: TrialState
    value: float | list[float] | None  # several metrics: one value each
    seconds: float
    note: str = ""


def _reporter(trial: optuna.Trial, objs: Objectives, best: dict[str, Any], *, last: int,
              fixed: dict[str, float]):
    """Track each epoch's best score (and, for several metrics, each metric's value) and, for
    one metric, report the best-so-far to Optuna and ask its pruner, except after the ``last``
    epoch the trial may train: a trial that trained every epoch it was allowed is COMPLETE
    (Hyperband's top rung, or a quick form's epoch cap, is not a reason to prune). Optuna
    neither reports nor prunes several metrics: their trials record their epochs instead.
    ``fixed``: metrics known before training (the model's parameters)."""
    (metric, direction), multi = objs[0], len(objs) > 1
    minimize = direction == "minimize"

    def report(epoch: int, metrics: dict[str, float]) -> None:
        signals.check()
        value, best["last"] = metrics[metric], epoch
        if "value" not in best or (value < best["value"] if minimize else value > best["value"]):
            best.update(value=value, epoch=epoch)
            if f"{metric}_sd" in metrics:  # cross-validation: the folds' spread at the best epoch
                best["sd"] = metrics[f"{metric}_sd"]
        if multi:
            best["values"] = aggregate(objs, best.get("values"), metrics, epoch, fixed)
        with signals.deferred():  # the study's store is written whole or not at all
            if multi:
                trial.set_user_attr("epochs", epoch)
                prune = False
            else:
                trial.report(best["value"], step=epoch)
                prune = epoch < last and trial.should_prune()
        failpoints.hit("trial.epoch_end")
        if prune:
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric} best {best['value']:.4f})")
    return report


def run_trial(ctx: SweepContext, study: optuna.Study, trial: optuna.Trial) -> Outcome:
    """Run ``trial`` to COMPLETE, PRUNED (pruner or divergence) or FAIL and tell the study. On
    Ctrl-C or SIGTERM the trial is failed, its run KILLED and a ticket added to replace it."""
    start = time.perf_counter()
    best: dict[str, float] = {}
    log: EpochLog | None = None
    try:
        with heartbeat(ctx.storage, study, trial):
            failpoints.hit("trial.start")
            with signals.deferred():  # the run's id is recorded before anything can interrupt
                log = EpochLog(ctx, trial.number, _child_run(ctx, study, trial))
            state, value, status, note, tags = _train(ctx, study, trial, log, best)
        with signals.deferred():
            _close(ctx, study, trial.number, log, state, value, status, tags, best)
    except KeyboardInterrupt:
        abandon_quietly(ctx, study, trial.number, "interrupted (Ctrl-C or SIGTERM)", log=log, best=best)
        raise
    return Outcome(state, value, time.perf_counter() - start, note)


def abandon_quietly(ctx: SweepContext, study: optuna.Study, number: int, reason: str, *,
                    log: EpochLog | None = None, best: dict[str, float] | None = None) -> None:
    """:func:`abandon`, or one warning line when the store is busy or gone (the heartbeat fails
    the trial later)."""
    try:
        abandon(ctx, study, number, reason, log=log, best=best)
    except Exception as exc:  # noqa: BLE001 - a store busy or gone: the heartbeat fails it later
        print(f"warning: trial {number} could not be closed ({mask_url(one_line(exc))[:200]}); "
              "the next run fails and replaces it once its heartbeat is stale",
              file=sys.stderr, flush=True)


def _train(ctx: SweepContext, study: optuna.Study, trial: optuna.Trial, log: EpochLog,
           best: dict[str, float]) -> tuple[TrialState, float | list[float] | None, str, str, dict[str, str]]:
    state, value, status, note, tags = TrialState.FAIL, None, tracking.FAILED, "", {}
    try:
        sampled, chosen = sample(ctx.space, trial, ctx.base)
        trial.set_user_attr("overrides", sampled)
        cfg = ctx.trial_config(sampled)
        log.label = short_name(chosen)
        _mlflow(ctx, log.run, f"trial {trial.number}: params", tracking.log_config, cfg,
                tags={"mlflow.runName": run_name(trial.number, log.label),
                      "sampled": ", ".join(chosen)})  # which of its params the study varied
        shown, close = epoch_progress(cfg.train.epochs, desc=f"trial {trial.number}", keep=False,
                                      every=PROGRESS_EVERY, bar=None if ctx.cfg.sweep.workers == 1
                                      else False)  # several processes: plain lines, not bars
        try:
            train_config(cfg, data=ctx.data_for(cfg), on_probe=log, refit=False, on_epoch_end=chain(
                log, shown, _reporter(trial, ctx.objectives, best, last=cfg.train.epochs,
                                      fixed=fixed_metrics(cfg))))
        finally:
            close()
        value = best["values"] if ctx.multi else best["value"]
        state, status = TrialState.COMPLETE, tracking.FINISHED
    except optuna.TrialPruned as exc:
        state, status, note = TrialState.PRUNED, tracking.FINISHED, str(exc)
        tags["pruned_at_epoch"] = str(best.get("last", 0))
    except DivergedError as exc:
        state, status, note = TrialState.PRUNED, tracking.FINISHED, f"diverged: {exc}"
        tags["pruned_at_epoch"], tags["diverged"] = str(exc.epoch), "true"
        trial.set_user_attr("pruned_reason", note)
    except Exception as exc:  # noqa: BLE001 - a raising trial is recorded, the study goes on
        signals.check()  # unless the interrupt caused it (a library that turned it into its own error)
        note = one_line(exc)
        trial.set_user_attr("error", note[:2000])
        tags["error"] = note[:5000]
        add_tickets(study, 1, reason="replaces-failed")
    return state, value, status, note, tags


def abandon(ctx: SweepContext, study: optuna.Study, number: int, reason: str, *,
            log: EpochLog | None = None, best: dict[str, float] | None = None) -> bool:
    """Fail trial ``number`` of a stopped worker, close its runs as KILLED (found by their tags
    when the id never got recorded) and add a ticket to replace it. A trial that has already
    ended (an interrupt that came just after its close) is left as it ended: False."""
    if state_of(ctx, study, number).is_finished():
        return False
    if log is not None:
        _close(ctx, study, number, log, TrialState.FAIL, None, tracking.KILLED,
               {"error": reason}, best or {})
    else:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    ctx.outbox.drain(wait=GRACE_SECONDS / 2)  # its run's pending calls first, then the KILLED state
    with contextlib.suppress(Exception):  # a tracking server that is gone closes nothing
        runs.close_trial(ctx, study.study_name, number, tracking.KILLED, reason)
    add_tickets(study, 1, reason="replaces-interrupted")
    return True


def state_of(ctx: SweepContext, study: optuna.Study, number: int) -> TrialState:
    """Trial ``number``'s state as stored now."""
    if ctx.storage is not None:
        return ctx.storage.get_trial(trial_id_of(ctx.storage, study, number)).state
    return next(t.state for t in study.get_trials(deepcopy=False) if t.number == number)


@dataclass
class ChildRun:
    """A trial's MLflow run; ``id`` is set once MLflow has created it (late, through the
    outbox, when the tracking server was unreachable at the trial's start)."""

    id: str | None = None


def _child_run(ctx: SweepContext, study: optuna.Study, trial: optuna.Trial) -> ChildRun:
    run = ChildRun()
    tags = {"mlflow.parentRunId": ctx.parent_run_id, "optuna.study": study.study_name,
            "optuna.trial": str(trial.number), "kind": "trial"}

    def create() -> None:
        run.id = ctx.client.create_run(ctx.experiment_id, run_name=run_name(trial.number),
                                       tags=tags).info.run_id

    ctx.outbox.call(f"trial {trial.number}: create run", create)
    if run.id is not None:
        trial.set_user_attr("mlflow_run_id", run.id)
    return run


def _mlflow(ctx: SweepContext, run: ChildRun, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    """``fn(client, run.id, *args, **kwargs)`` on the outbox's sender thread, off the training
    path, in the order sent (the id is read when it runs: a run whose creation was queued gets
    its calls queued behind it). Signals reach only the main thread, so no write is cut short."""
    def job() -> None:
        if run.id is not None:  # else neither created nor queued: MLflow rejected the run
            fn(ctx.client, run.id, *args, **kwargs)
    ctx.outbox.send(what, job)


class EpochLog:
    """A trial's per-epoch metrics, sent at most every ``FLUSH_SECONDS``: every epoch at once when
    epochs are slower than that (the UI stays live), in a few batches when they are faster (short
    trials would otherwise spend a noticeable share of their time on one request per epoch)."""

    FLUSH_SECONDS = 2.0

    def __init__(self, ctx: SweepContext, number: int, run: ChildRun) -> None:
        self.ctx, self.number, self.run = ctx, number, run
        self.label = ""  # what the trial sampled, short, for its run's name
        self.pending: list[tuple[int, dict[str, float]]] = []
        self.last = time.monotonic()

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.pending.append((epoch, dict(metrics)))
        if time.monotonic() - self.last >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self, *, tags: dict[str, str] | None = None) -> None:
        """Send what is pending (and ``tags``) in one request."""
        history, self.pending = self.pending, []
        if history or tags:
            _mlflow(self.ctx, self.run, f"trial {self.number}: metrics", tracking.log_history,
                    history, tags=tags)
        self.last = time.monotonic()


def _close(ctx: SweepContext, study: optuna.Study, number: int, log: EpochLog,
           state: TrialState, value: float | list[float] | None, status: str, tags: dict[str, str],
           best: dict[str, float]) -> None:
    """Tell Optuna first (the source of truth), then close the MLflow child run: the pending
    epochs, the state tags and the best score in one request, then the run's status."""
    study.tell(number, value if state == TrialState.COMPLETE else None, state=state,
               skip_if_finished=True)
    failpoints.hit("trial.close")
    if "value" in best:  # the score and where it was reached, at the step of the last epoch
        metric = ctx.metric
        final = {f"{metric}_best": best["value"], "best_epoch": best["epoch"]}
        if "sd" in best:
            final[f"{metric}_best_sd"] = best["sd"]
        final.update({objective_key(n): v for (n, _), v in zip(ctx.objectives, best.get("values", []),
                                                                 strict=False)})
        log.pending.append((int(best["last"]), final))
    log.flush(tags={**tags, "optuna.state": state.name,
                    "mlflow.runName": run_name(number, log.label, outcome_of(state, status, tags))})
    _mlflow(ctx, log.run, f"trial {number}: end run", tracking.end_run, status)
    if state == TrialState.COMPLETE:
        _log_study_best(ctx, study, number)


def _log_study_best(ctx: SweepContext, study: optuna.Study, number: int) -> None:
    """``best/val_acc`` (or ``best/val_loss``) on the parent, step = the trial just completed;
    with several metrics also ``front/size``, the Pareto front's trials."""
    best = best_trial(study)
    if best is None:
        return
    metric = "best/" + ctx.metric.replace("/", "_")
    values = {metric: best.values[0]}
    if ctx.multi:
        values["front/size"] = len(study.best_trials)
    ctx.outbox.send(f"{metric} of the study", tracking.log_metrics, ctx.client, ctx.parent_run_id,
                    values, step=number)


def describe(trial: optuna.Trial | optuna.trial.FrozenTrial) -> str:
    """The sampled values of a trial, short."""
    return json.dumps({k: _short(v) for k, v in trial.params.items()})


def _short(v: Any) -> Any:
    return float(f"{v:.4g}") if isinstance(v, float) else v
