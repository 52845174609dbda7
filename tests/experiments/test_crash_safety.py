"""Sweeps killed, interrupted or started together: the same command completes what is missing,
no trial or MLflow run stays RUNNING, and totals stay exact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from experiments.study.finish import KILL_AT, STAGES
from tests.conftest import DATA_ROOT, forget_storage, load_study, wait_for
from tests.sweeps import Sweeps

pytestmark = pytest.mark.slow


def _args(tmp: Path, n: int, *extra: str) -> list[str]:
    return [f"data.root={DATA_ROOT}", "search=tiny", "data.limit_train=1500", "data.val_size=500",
            "train.epochs=2", f"sweep.n_trials={n}", "sweep.sampler=random", "sweep.pruner=none",
            "mlflow.log_model=false", f"sweep.storage=sqlite:///{tmp}/optuna.db",
            f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", *extra]


def _runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    return client.search_runs([exp.experiment_id], max_results=1000)


def _run(tmp: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    with Sweeps(tmp, env) as sweeps:
        sweeps.start(args)
        ((code, out),) = sweeps.wait(timeout=600)
    return code, out


@pytest.mark.parametrize("stage", STAGES)
def test_the_same_command_completes_a_finish_killed_at_any_stage(tmp_path: Path, stage: str) -> None:
    args = _args(tmp_path, 2)
    code, out = _run(tmp_path, args, {KILL_AT: stage})
    assert code == -signal.SIGKILL, out
    code, out = _run(tmp_path, args)
    assert code == 0, out
    assert "study already complete" not in out

    study = load_study(f"sqlite:///{tmp_path}/optuna.db")
    assert all(study.user_attrs[f"finish.{s}"] == 2 for s in STAGES)
    runs = _runs(tmp_path)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "study"]
    assert parent.info.status == "FINISHED" and "test/acc" in parent.data.metrics
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    names |= {a.path for a in client.list_artifacts(parent.info.run_id, "best")}
    assert {"optuna/history.png", "optuna/plots.html", "best/params.json",
            "best/experiment.yaml"} <= names
    assert (tmp_path / "conf" / "experiment" / "best" / "mlp-sweep.yaml").exists()
    retrains = sorted(r.info.status for r in runs if r.data.tags.get("kind") == "retrain")
    assert retrains == (["FINISHED", "KILLED"] if stage == "retrain" else ["FINISHED"])

    code, out = _run(tmp_path, args)  # once complete, the same command has nothing to do
    assert code == 0 and "study already complete" in out
    forget_storage(f"sqlite:///{tmp_path}/optuna.db")


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the main process"])
def test_an_interrupt_reaches_every_worker_and_closes_every_trial_and_run(
        tmp_path: Path, how: str) -> None:
    # Trials of a few seconds (2x1024 on 6,000 images), two workers.
    args = _args(tmp_path, 8, "sweep.workers=2", "model.depth=2", "model.width=1024",
                 "data.limit_train=6000", "sweep.heartbeat=2", "search=none",
                 "+search.params={optim.lr: 'tag(log, interval(0.05, 0.5))'}")
    url = f"sqlite:///{tmp_path}/optuna.db"
    with Sweeps(tmp_path) as sweeps:
        proc = sweeps.start(args)

        def two_training() -> bool | None:
            """Two trials running, each with its MLflow run recorded."""
            try:
                trials = load_study(url).trials
            except KeyError:
                return None
            training = [t for t in trials if t.state == TrialState.RUNNING
                        and "mlflow_run_id" in t.user_attrs]
            return len(training) == 2 or None

        wait_for(two_training, "two trials training", timeout=300)
        start = time.monotonic()
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        ((code, out),) = sweeps.wait(timeout=120)
        seconds = time.monotonic() - start
    assert code == 130, out
    assert "did not stop within" not in out  # each worker stopped itself, none had to be killed
    assert seconds < 60, f"stopping took {seconds:.0f} s"  # seconds, not minutes of retries
    assert "Traceback" not in out and "database is locked" not in out
    study = load_study(url)
    assert not [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert not [r.info.run_name for r in _runs(tmp_path) if r.info.status == "RUNNING"]
    forget_storage(url)


@pytest.mark.parametrize("attempt", [1, 2])
def test_three_sweeps_started_together_on_fresh_stores_share_one_study(
        tmp_path: Path, attempt: int) -> None:
    args = _args(tmp_path, 6)
    with Sweeps(tmp_path) as sweeps:
        for _ in range(3):
            sweeps.start(args)
        results = sweeps.wait(timeout=600)
    assert [code for code, _ in results] == [0, 0, 0], "\n\n".join(out for _, out in results)
    study = load_study(f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 6
    assert len(study.trials) == 6
    runs = _runs(tmp_path)
    assert len([r for r in runs if r.data.tags.get("kind") == "study"]) == 1
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs
                  if r.data.tags.get("kind") == "trial") == list(range(6))
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert len([r for r in runs if r.data.tags.get("kind") == "retrain"]) == 1
    forget_storage(f"sqlite:///{tmp_path}/optuna.db")
