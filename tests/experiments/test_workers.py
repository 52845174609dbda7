"""Worker processes on one SQLite study: sweep.workers=2, and a worker killed mid-trial."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.conftest import DATA_ROOT, REPO

pytestmark = pytest.mark.slow


def _args(tmp: Path, n: int, *extra: str) -> list[str]:
    """A study of learning rates for a 2x1024 MLP on 6,000 images: trials of a few seconds."""
    (tmp / "conf" / "search").mkdir(parents=True, exist_ok=True)
    (tmp / "conf" / "search" / "lr.yaml").write_text(
        "# learning rate only\nparams:\n  optim.lr: tag(log, interval(0.05, 0.5))\n")
    return [sys.executable, "-m", "experiments.sweep", f"data.root={DATA_ROOT}", "sweep.quick=true",
            f"hydra.searchpath=[file://{tmp}/conf]", "search=lr", "model.depth=2",
            "model.width=1024", "data.limit_train=6000", "train.epochs=3", "model.init=he",
            "sweep.pruner=none",
            "sweep.sampler=random", "sweep.retrain_best=false", f"sweep.n_trials={n}",
            f"sweep.storage=sqlite:///{tmp}/optuna.db", f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
            *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _study(tmp: Path) -> optuna.Study:
    return optuna.load_study(study_name="mlp-sweep", storage=f"sqlite:///{tmp}/optuna.db")


def _trial_runs(tmp: Path) -> dict[int, object]:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=500)
    return {int(r.data.tags["optuna.trial"]): r for r in runs}


def test_two_worker_processes_share_one_study(tmp_path: Path) -> None:
    proc = subprocess.run(_args(tmp_path, 6, "sweep.workers=2"), cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _study(tmp_path).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers ran trials
    runs = _trial_runs(tmp_path)
    assert sorted(runs) == list(range(6))
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {
        _study(tmp_path).user_attrs["mlflow_parent_run_id"]}


def test_a_worker_killed_mid_trial_is_recovered(tmp_path: Path) -> None:
    args = _args(tmp_path, 6, "sweep.heartbeat=1")
    # Start one worker, let it create the study, then a second one that attaches.
    workers = [subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)]
    victim = _wait_for_running_trial(tmp_path, workers[0].pid)
    workers.append(subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True))
    os.kill(workers[0].pid, signal.SIGKILL)
    workers[0].wait(timeout=30)
    _, err = workers[1].communicate(timeout=300)
    assert workers[1].returncode == 0, err[-3000:]

    study = _study(tmp_path)
    killed = study.trials[victim]
    assert killed.state == TrialState.FAIL
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 6 and len(study.trials) == 7  # six done, one failed and retried
    retry = [t for t in done if t.system_attrs.get("failed_trial") == killed.number]
    assert retry and retry[0].params == killed.params
    assert _trial_runs(tmp_path)[victim].info.status == "FAILED"


def _wait_for_running_trial(tmp: Path, pid: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (tmp / "optuna.db").exists():
            try:
                for t in _study(tmp).get_trials(states=(TrialState.RUNNING,)):
                    if t.user_attrs.get("worker", "").endswith(f":{pid}") and t.intermediate_values:
                        return t.number
            except (KeyError, optuna.exceptions.StorageInternalError):
                pass
        time.sleep(0.2)
    raise AssertionError("the first worker never ran a trial")
