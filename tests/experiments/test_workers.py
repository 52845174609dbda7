"""Worker processes on one SQLite study: sweep.workers=2 (a worker killed mid-trial, then the
same command: test_crash_safety.py)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.conftest import DATA_ROOT, load_study, wait_for
from tests.sweeps import Sweeps

pytestmark = pytest.mark.slow


def _args(tmp: Path, n: int, *extra: str) -> list[str]:
    """A study of learning rates for a small MLP on 2,000 images."""
    (tmp / "conf" / "search").mkdir(parents=True, exist_ok=True)
    (tmp / "conf" / "search" / "lr.yaml").write_text(
        "# learning rate only\nparams:\n  optim.lr: tag(log, interval(0.05, 0.5))\n")
    return [f"data.root={DATA_ROOT}", "sweep.quick=true",
            f"hydra.searchpath=[file://{tmp}/conf]", "search=lr", "model.width=64",
            "data.limit_train=2000", "data.val_size=500", "train.epochs=3", "model.init=he",
            "sweep.pruner=none",
            "sweep.sampler=random", "sweep.retrain_best=false", f"sweep.n_trials={n}",
            f"sweep.storage=sqlite:///{tmp}/optuna.db", f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
            *extra]


def _study(tmp: Path) -> optuna.Study:
    return load_study(f"sqlite:///{tmp}/optuna.db", "mlp-sweep-quick")


def _trial_runs(tmp: Path) -> dict[int, object]:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=500)
    return {int(r.data.tags["optuna.trial"]): r for r in runs}


def test_two_worker_processes_share_one_study(tmp_path: Path) -> None:
    with Sweeps(tmp_path) as sweeps:
        # Each worker pauses at its first trial's start, so both hold a trial however fast the
        # machine (one worker could otherwise run all six before the other has started).
        proc = sweeps.start(_args(tmp_path, 6, "sweep.workers=2"), failpoints="trial.start=1:pause")
        sweeps.paused("trial.start", 2)
        sweeps.resume("trial.start")
        proc.wait(timeout=900)
        assert proc.returncode == 0, sweeps.output(proc)
    trials = _study(tmp_path).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers ran trials
    runs = _trial_runs(tmp_path)
    assert sorted(runs) == list(range(6))
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {
        _study(tmp_path).user_attrs["mlflow_parent_run_id"]}


def test_workers_stop_when_their_main_process_is_killed_and_the_rerun_completes(
        tmp_path: Path) -> None:
    """However the main process ends (kill -9 here, as the OOM killer does), its workers do not
    run on for nobody: each closes its trial and exits, and the same command finishes the study."""
    with Sweeps(tmp_path) as sweeps:
        proc = sweeps.start(_args(tmp_path, 4, "sweep.workers=2"), failpoints="trial.start=1:pause")
        workers = sweeps.paused("trial.start", 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        try:
            wait_for(lambda: not any(map(_alive, workers)) or None, "the orphaned workers to stop",
                     timeout=120)
        except AssertionError:  # where each worker still running is, for whoever reads the failure
            for pid in filter(_alive, workers):
                os.kill(pid, signal.SIGUSR1)
            with contextlib.suppress(AssertionError):  # the dump on stderr, or whatever came
                wait_for(lambda: "(most recent call first)" in sweeps.output(proc) or None,
                         "the workers' stacks", timeout=10)
            raise AssertionError("orphaned workers still running:\n" + sweeps.output(proc)[-6000:]) from None
        rerun = sweeps.start(_args(tmp_path, 4, "sweep.workers=2"))
        rerun.wait(timeout=900)
        assert rerun.returncode == 0, sweeps.output(rerun)
    trials = _study(tmp_path).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie nobody has reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
