"""Sweeps killed, interrupted or started together, each at a failpoint (never in a race for a
moment): the same command completes what is missing, no trial or MLflow run stays RUNNING, and
totals stay exact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from experiments.study.finish import STAGES
from tests.conftest import DATA_ROOT, forget_storage, load_study, wait_for
from tests.sweeps import Sweeps

pytestmark = pytest.mark.slow

N_TRIALS = 3
# A trial is stale, failed and retried by the next claim once its heartbeat is 3 x sweep.heartbeat
# (1 s here) old. The beats of a killed process's trials all came before its death, so waiting
# this long after it has exited makes them stale on any machine; starting the next run sooner
# would leave it to the machine's speed whether that run's claims see them stale.
STALE_AFTER = 3 * 1 + 1.0


def _args(tmp: Path, n: int = N_TRIALS, *extra: str) -> list[str]:
    return [f"data.root={DATA_ROOT}", "search=tiny", "data.limit_train=1500", "data.val_size=500",
            "train.epochs=2", f"sweep.n_trials={n}", "sweep.sampler=random", "sweep.pruner=none",
            "sweep.heartbeat=1", "mlflow.log_model=false", f"sweep.storage=sqlite:///{tmp}/optuna.db",
            f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", *extra]


def _runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    return client.search_runs([exp.experiment_id], max_results=1000)


def _run(tmp: Path, args: list[str], failpoints: str = "") -> tuple[int, str]:
    with Sweeps(tmp) as sweeps:
        sweeps.start(args, failpoints=failpoints)
        ((code, out),) = sweeps.wait(timeout=600)
    return code, out


def _study(tmp: Path) -> optuna.Study:
    url = f"sqlite:///{tmp}/optuna.db"
    study = load_study(url)
    forget_storage(url)  # each test has its own database
    return study


def _check_complete(tmp: Path, n: int = N_TRIALS) -> optuna.Study:
    """The study as a clean run leaves it: n trials COMPLETE, each with one FINISHED run, nothing
    RUNNING or WAITING in either store, every finish stage done, the parent closed and tested."""
    study = _study(tmp)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == n
    assert not {TrialState.RUNNING, TrialState.WAITING} & set(states), states
    assert all(study.user_attrs[f"finish.{s}"] == n for s in STAGES)
    runs = _runs(tmp)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    finished = sorted(int(r.data.tags["optuna.trial"]) for r in runs
                      if r.data.tags.get("kind") == "trial" and r.info.status == "FINISHED")
    assert finished == sorted(t.number for t in study.trials if t.state == TrialState.COMPLETE)
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    assert parent.info.status == "FINISHED" and "test/acc" in parent.data.metrics
    assert "stopped" not in parent.data.tags  # an earlier run's reason to stop no longer holds
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    for key in ("test/acc", "best/trial"):  # logged once, however often the finish was resumed
        steps = [m.step for m in client.get_metric_history(parent.info.run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)
    return study


def _trials(tmp: Path, state: TrialState) -> list[optuna.trial.FrozenTrial]:
    return [t for t in _study(tmp).trials if t.state == state]


def test_the_same_command_completes_a_sweep_killed_at_every_point_in_turn(tmp_path: Path) -> None:
    """kill -9 at the claim (before the trial's first heartbeat), mid-trial, between Optuna's
    tell and the MLflow close, and inside each finish stage, one run after another on the same
    study; each run completes what the last one left, and the last leaves a clean study."""
    args = _args(tmp_path)

    def killed_at(failpoint: str) -> str:
        code, out = _run(tmp_path, args, failpoint)
        assert code == -signal.SIGKILL and f"failpoint {failpoint.split('=')[0]}: kill" in out, out
        return out

    killed_at("study.parent=kill")  # the study created, its parent run not
    assert not _study(tmp_path).trials and not _runs(tmp_path)
    out = killed_at("worker.claim=2:kill")  # trial 1 claimed, then the worker died before its beat
    assert "this run adopts it" in out
    (claimed,) = _trials(tmp_path, TrialState.RUNNING)
    assert claimed.number == 1 and not claimed.params
    killed_at("trial.epoch_end=1:kill")  # trial 2 killed after its first epoch
    mid = next(t for t in _trials(tmp_path, TrialState.RUNNING) if t.number == 2)
    assert list(mid.intermediate_values) == [1]
    time.sleep(STALE_AFTER)  # both dead trials' last beats are now older than the grace period
    killed_at("trial.close=1:kill")  # both dead trials failed and retried; one told COMPLETE
    assert [t.number for t in _trials(tmp_path, TrialState.FAIL)] == [1, 2]
    told = max(_trials(tmp_path, TrialState.COMPLETE), key=lambda t: t.number)
    for stage in STAGES:
        killed_at(f"finish.{stage}=kill")
    code, out = _run(tmp_path, args)
    assert code == 0 and "study already complete" not in out, out
    study = _check_complete(tmp_path)

    assert len(study.trials) == N_TRIALS + 2  # the two killed trials, each rerun once
    retry_of = {t.system_attrs.get("failed_trial"): t for t in study.trials}
    assert retry_of[1].state == retry_of[2].state == TrialState.COMPLETE
    assert retry_of[2].params == mid.params  # the point it was killed on, trained again
    every = _runs(tmp_path)
    runs = {r.data.tags.get("optuna.trial"): r for r in every if r.data.tags.get("kind") == "trial"}
    assert runs["2"].info.status == "FAILED" and "heartbeat" in runs["2"].data.tags["error"]
    assert runs["2"].info.run_name.split()[:2] == ["trial-0002", "FAILED"]
    assert runs[str(told.number)].info.status == "FINISHED"  # closed by the finish, as told

    parent = next(r for r in every if r.data.tags.get("kind") == "study")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    names |= {a.path for a in client.list_artifacts(parent.info.run_id, "best")}
    assert {"optuna/history.png", "optuna/plots.html", "best/params.json",
            "best/experiment.yaml"} <= names
    assert (tmp_path / "conf" / "experiment" / "best" / "mlp-sweep.yaml").exists()
    retrains = sorted(r.info.status for r in every if r.data.tags.get("kind") == "retrain")
    assert retrains == ["FINISHED", "KILLED"]
    code, out = _run(tmp_path, args)  # once complete, the same command has nothing to do
    assert code == 0 and "study already complete" in out


def test_interrupts_reach_every_worker_and_the_same_command_completes_the_study(tmp_path: Path) -> None:
    """Two workers, interrupted three times in turn: just after a claim (inside the claim, so
    one worker holds the claim lock and the other waits for it) by SIGTERM to the main process;
    in the middle of a trial by Ctrl-C to the process group; just after a trial was told
    COMPLETE but before its run was closed, by SIGTERM. Each time the interrupted trials are
    failed and replaced and a complete one is kept as it ended; the next run completes."""
    n, args = 4, _args(tmp_path, 4, "sweep.workers=2")
    tickets = n
    for point, paused, how in [("worker.claim", 1, "SIGTERM"), ("trial.epoch_end", 2, "SIGINT"),
                               ("trial.close", 2, "SIGTERM")]:
        with Sweeps(tmp_path) as sweeps:
            proc = sweeps.start(args, failpoints=f"{point}=1:pause")
            sweeps.paused(point, paused)
            start = time.monotonic()
            if how == "SIGINT":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                os.kill(proc.pid, signal.SIGTERM)
            # A pause inside a deferred step (the claim, the close) holds the signal until the
            # step ends: release it once the main process has passed the interrupt on.
            wait_for(lambda: sweeps.said("stopping the workers"), "the interrupt passed to the workers")
            sweeps.resume(point)
            ((code, out),) = sweeps.wait(timeout=120)
            seconds = time.monotonic() - start
            for marker in tmp_path.glob(f"{point}.*"):
                marker.unlink()
        assert code == 130, out
        assert "did not stop within" not in out  # each worker stopped itself, none was killed
        assert seconds < 60, f"stopping took {seconds:.0f} s"  # seconds, not minutes of retries
        assert "Traceback" not in out and "database is locked" not in out
        study = _study(tmp_path)
        assert not [t.number for t in study.trials if t.state == TrialState.RUNNING], point
        assert not [r.info.run_name for r in _runs(tmp_path) if r.info.status == "RUNNING"], point
        failed = len([t for t in study.trials if t.state == TrialState.FAIL])
        # The paused trials failed (the claim's other worker may not have claimed one yet),
        # the trials told COMPLETE kept; each failed trial replaced by exactly one ticket.
        expected = {"worker.claim": (1, 2), "trial.epoch_end": (2,), "trial.close": (0,)}[point]
        assert failed - (tickets - n) in expected, point
        assert len(study.trials) == n + failed, point
        tickets = n + failed
    complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2  # told before the last interrupt: kept as they ended
    runs = {r.data.tags["optuna.trial"]: r for r in _runs(tmp_path) if r.data.tags.get("kind") == "trial"}
    assert all(runs[str(k)].info.status == "FINISHED" for k in complete)
    assert all("killed" not in runs[str(k)].info.run_name for k in complete)
    # Trials interrupted mid-trial have KILLED runs; those interrupted at the claim have none.
    assert len([r for r in runs.values() if r.info.status == "KILLED"]) == 2

    code, out = _run(tmp_path, args)
    assert code == 0, out
    study = _check_complete(tmp_path, n)
    assert len(study.trials) == tickets  # the rerun added no ticket


def test_three_sweeps_started_together_on_fresh_stores_share_one_study(tmp_path: Path) -> None:
    """All three reach the creation of the stores' tables and the study before any of them
    goes on, then go on at once: the first start at its most contended."""
    args = _args(tmp_path, 6)
    with Sweeps(tmp_path) as sweeps:
        for _ in range(3):
            sweeps.start(args, failpoints="study.create=pause")
        sweeps.paused("study.create", 3)
        assert not (tmp_path / "optuna.db").exists()
        sweeps.resume("study.create")
        results = sweeps.wait(timeout=600)
    assert [code for code, _ in results] == [0, 0, 0], "\n\n".join(out for _, out in results)
    study = _check_complete(tmp_path, 6)
    assert len(study.trials) == 6
    runs = _runs(tmp_path)
    assert len([r for r in runs if r.data.tags.get("kind") == "study"]) == 1
    assert len([r for r in runs if r.data.tags.get("kind") == "retrain"]) == 1
