"""The study's MLflow runs found by their tags, so that a run is closed even when its id was
never recorded (a process stopped between creating the run and noting its id)."""

from __future__ import annotations

import datetime
import os
import socket
from typing import TYPE_CHECKING

import optuna
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from experiments import tracking
from experiments.cli import one_line
from experiments.config import plural

if TYPE_CHECKING:
    from experiments.study.context import SweepContext

ORPHAN_SECONDS = 600.0


def run_name(number: int, label: str = "", outcome: str = "") -> str:
    """A trial run's name: ``trial-0007 w256 lr0.1`` (what it sampled), with how it ended in
    front of that when it did not complete (``trial-0007 pruned@3 ...``, ``FAILED``, ``killed``):
    the runs table shows pruned and failed trials at a glance."""
    return " ".join(p for p in (f"trial-{number:04d}", outcome, label) if p)


def outcome_of(state: TrialState, status: str, tags: dict[str, str]) -> str:
    """How a trial ended, in its run's name (nothing for a complete one)."""
    if state == TrialState.PRUNED:
        return f"{'diverged' if tags.get('diverged') else 'pruned'}@{tags.get('pruned_at_epoch', '?')}"
    if state == TrialState.FAIL:
        return "killed" if status == tracking.KILLED else "FAILED"
    return ""


def running(ctx: SweepContext, study_name: str, *, trial: int | None = None) -> list[Run]:
    """The study's runs still RUNNING (those of trial number ``trial`` only, if given)."""
    quote = '"' if "'" in study_name else "'"
    where = f"tags.`optuna.study` = {quote}{study_name}{quote} and attributes.status = 'RUNNING'"
    if trial is not None:
        where += f" and tags.`optuna.trial` = '{trial}'"
    return ctx.client.search_runs([ctx.experiment_id], where, max_results=5000)


def close(ctx: SweepContext, run: Run, status: str, reason: str,
          state: TrialState | None = None) -> None:
    """End a run with the reason (and the trial's state, for a trial's run) as tags; a trial's
    run that did not complete says how it ended in its name."""
    tags = {"error" if status != tracking.FINISHED else "note": reason[:5000]}
    if state is not None:
        tags["optuna.state"] = state.name
        outcome = outcome_of(state, status, {"pruned_at_epoch": "?", **run.data.tags})
        number, _, label = (run.info.run_name or "").partition(" ")
        if outcome and number.startswith("trial-") and outcome not in label:
            tags["mlflow.runName"] = run_name(int(number[6:]), label, outcome)
    tracking.log_history(ctx.client, run.info.run_id, [], tags=tags)
    tracking.end_run(ctx.client, run.info.run_id, status)


def close_trial(ctx: SweepContext, study_name: str, number: int, status: str, reason: str) -> None:
    """Close every run of trial ``number`` still RUNNING; the trial has failed."""
    for run in running(ctx, study_name, trial=number):
        close(ctx, run, status, reason, TrialState.FAIL)


def close_orphans(ctx: SweepContext, study: optuna.Study) -> int:
    """Close the runs that stopped processes left RUNNING, as their trial's state says: an
    interrupted retrain (only the finisher, under its lock, creates one), and a trial's run whose
    trial ended more than ``ORPHAN_SECONDS`` ago (a live worker may still be sending that run's
    last calls, queued while the tracking server was away) or whose worker on this machine is
    gone. Returns how many were closed."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    now, closed = datetime.datetime.now(), 0
    for run in running(ctx, study.study_name):
        tags, run_id = run.data.tags, run.info.run_id
        if tags.get("kind") == "trial":
            trial = trials.get(int(tags.get("optuna.trial", -1)))
            ended = trial.datetime_complete if trial is not None else None
            if trial is not None and (ended is None or (now - ended).total_seconds() < ORPHAN_SECONDS
                                      ) and not worker_gone(trial):
                continue
            state = trial.state if trial is not None else TrialState.FAIL
            why = (tracking.FAILED if state == TrialState.FAIL else tracking.FINISHED,
                   "its worker stopped before closing the run", state)
        elif tags.get("kind") == "retrain":
            why = (tracking.KILLED, "the finish was interrupted during this retrain; "
                                    "it was retrained again", None)
        else:
            continue
        try:
            close(ctx, run, *why)
            closed += 1
        except MlflowException as exc:  # e.g. its own worker closed it in between
            print(f"note: run {run_id} was not closed here ({one_line(exc)[:200]})", flush=True)
    if closed:
        print(f"closed {plural(closed, 'MLflow run')} that stopped processes left RUNNING", flush=True)
    return closed


def worker_gone(trial: FrozenTrial) -> bool:
    """True when the trial has ended and its worker ran on this machine and is no longer
    running: nobody will close its run. (A worker elsewhere gets ``ORPHAN_SECONDS``.)"""
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if (not trial.state.is_finished() or host != socket.gethostname() or not pid.isdigit()
            or int(pid) == os.getpid()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def close_stale(ctx: SweepContext, trial: FrozenTrial, study_name: str) -> None:
    """A dead worker's trial (its heartbeat went stale): close its runs as FAILED; Optuna then
    fails the trial and enqueues its parameters again."""
    try:
        close_trial(ctx, study_name, trial.number, tracking.FAILED,
                    "worker died (heartbeat stale); trial re-enqueued")
    except Exception as exc:  # noqa: BLE001 - the finish closes what is left
        if not tracking.transient(exc):
            raise
    print(f"trial {trial.number}: its worker stopped beating; failed and re-enqueued", flush=True)
