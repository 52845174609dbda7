"""The scale-out topology for real, without Docker: an Optuna storage on PostgreSQL, an
``mlflow server`` (PostgreSQL backend, proxied artifacts) on a free loopback port, and several
independent ``python -m experiments.sweep`` workers with identical overrides (what the compose
``worker`` service runs). Each test makes its own databases and drops them."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from experiments import sweep
from experiments.stores.scratch import scratch_database
from experiments.tracking.server import TrackingServer, free_port
from tests.conftest import DATA_ROOT, forget_storage, load_study, needs_postgres, wait_for
from tests.experiments.registry.test_served import load_without_project
from tests.sweeps import Sweeps


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """One tracking server for the module (each test logs to its own MLflow experiment)."""
    with scratch_database(prefix="test_mlflow") as backend:
        with TrackingServer(backend, tmp_path_factory.mktemp("mlflow") / "artifacts") as srv:
            yield srv


@pytest.fixture()
def storage() -> Iterator[str]:
    with scratch_database(prefix="test_optuna") as url:
        yield url
        forget_storage(url)


def _overrides(storage: str, server: TrackingServer, experiment: str, n: int, *extra: str) -> list[str]:
    return [f"sweep.storage={storage}", f"mlflow.tracking_uri={server.uri}",
            f"mlflow.experiment={experiment}", f"sweep.n_trials={n}", f"data.root={DATA_ROOT}",
            "sweep.quick=true", "sweep.pruner=none", "sweep.retrain_best=false", "search=tiny", *extra]

WORKER_ENV = {"OMP_NUM_THREADS": "1"}  # one thread each, as the compose workers


QUICK, FULL = "mlp-sweep-quick", "mlp-sweep"  # the quick form's study has a name of its own


def _study(storage: str, name: str = QUICK) -> optuna.Study:
    return load_study(storage, name)


def _trials(storage: str, name: str = QUICK) -> list[optuna.trial.FrozenTrial]:
    try:
        return _study(storage, name).trials
    except KeyError:  # the study does not exist yet
        return []


def _runs(server: TrackingServer, experiment: str, kind: str) -> list:
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:  # no worker has created the experiment yet
        return []
    return client.search_runs([exp.experiment_id], f"tags.kind = '{kind}'", max_results=1000)


def _finished_children(server: TrackingServer, experiment: str) -> dict[int, list]:
    """The FINISHED trial runs, by trial number."""
    children: dict[int, list] = {}
    for run in _runs(server, experiment, "trial"):
        if run.info.status == "FINISHED":
            children.setdefault(int(run.data.tags["optuna.trial"]), []).append(run)
    return children


def _check_children(server: TrackingServer, experiment: str, study: optuna.Study, epochs: int) -> dict:
    """One FINISHED child run per COMPLETE trial, under the one parent, with every epoch logged
    (once every worker has exited)."""
    children = _finished_children(server, experiment)
    complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(children) == sorted(complete)
    return _check_runs(server, experiment, study, children, epochs)


def _check_runs(server: TrackingServer, experiment: str, study: optuna.Study, children: dict[int, list],
                epochs: int) -> dict:
    client = MlflowClient(server.uri)
    parents = _runs(server, experiment, "study")
    assert [p.info.run_id for p in parents] == [study.user_attrs["mlflow_parent_run_id"]]
    for number, runs in children.items():
        assert len(runs) == 1, f"trial {number} has {len(runs)} finished runs"
        run = runs[0]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["optuna.state"] == "COMPLETE"
        for key in ("train/loss", "val/acc"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(1, epochs + 1)), (number, key, steps)
    return {n: runs[0] for n, runs in children.items()}


def _settled_children(server: TrackingServer, experiment: str, storage: str,
                      name: str = QUICK, *, count: int) -> dict[int, list] | None:
    """The FINISHED trial runs once they are ``count`` and exactly the COMPLETE trials, else None
    (the workers close a trial's MLflow run just after they tell Optuna)."""
    children = _finished_children(server, experiment)
    complete = {t.number for t in _trials(storage, name) if t.state == TrialState.COMPLETE}
    return children if len(complete) == count and set(children) == complete else None


@pytest.mark.slow
@needs_postgres
def test_independent_workers_and_a_spawning_one_run_exactly_the_budget(
        tmp_path: Path, storage: str, server: TrackingServer) -> None:
    """... and the one finish registers the retrained best once, on the tracking server, where a
    fresh interpreter without the project loads it by its alias and scores its test accuracy."""
    exp, n = f"share-{uuid.uuid4().hex[:8]}", 6
    args = _overrides(storage, server, exp, n, "sweep.retrain_best=true", f"mlflow.register={exp}")
    with Sweeps(tmp_path, env=WORKER_ENV) as workers:
        for extra in ([], [], ["sweep.workers=2"]):  # what compose runs, plus sweep.workers=N
            workers.start([*args, *extra])
        results = workers.wait()
    assert all(code == 0 for code, _ in results), results
    study = _study(storage)
    assert sorted(t.number for t in study.trials) == list(range(n))  # no extra ticket, no duplicate
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.params["optim.lr"] for t in study.trials}) == n  # workers do not repeat samples
    _check_children(server, exp, study, epochs=3)
    (parent,) = _runs(server, exp, "study")
    assert parent.info.status == "FINISHED"
    client = MlflowClient(server.uri)
    (version,) = client.search_model_versions(f"name = '{exp}'")
    assert str(client.get_model_version_by_alias(exp, "best").version) == str(version.version)
    seen = load_without_project(f"models:/{exp}@best", server.uri, tmp_path)
    assert seen["correct"] / seen["n"] == parent.data.metrics["test/acc"]


@pytest.mark.slow
@needs_postgres
def test_a_worker_killed_mid_trial_is_failed_retried_and_nothing_is_lost(
        tmp_path: Path, storage: str, server: TrackingServer) -> None:
    exp, n = f"kill-{uuid.uuid4().hex[:8]}", 5
    args = _overrides(storage, server, exp, n, "sweep.quick=false", "data.limit_train=3000",
                      "data.val_size=1000", "train.epochs=3", "sweep.heartbeat=2")
    with Sweeps(tmp_path, env=WORKER_ENV) as workers:
        # Two workers pause at their first trial's start; the third kills itself at the end of
        # its first trial's second epoch, while the others hold trials of their own. Then they
        # go on, find its trial stale (6 s after its last beat), fail it and run it again.
        live = [workers.start(args, failpoints="trial.start=1:pause") for _ in range(2)]
        victim = workers.start(args, failpoints="trial.epoch_end=2:kill")
        workers.paused("trial.start", 2)
        assert victim.wait(timeout=300) == -signal.SIGKILL, workers.output(victim)
        workers.resume("trial.start")
        results = workers.wait()
    assert all(code == 0 for p, (code, _) in zip(workers.procs, results, strict=True) if p in live), results
    assert any("its worker stopped beating" in out for _, out in results)

    study = _study(storage, FULL)
    by_number = {t.number: t for t in study.trials}
    (dead,) = [t for t in study.trials if t.user_attrs.get("worker", "").endswith(f":{victim.pid}")]
    assert len(by_number) == len(study.trials) == n + 1  # one failed, re-enqueued, run again
    assert dead.state == TrialState.FAIL and sorted(dead.intermediate_values) == [1, 2]
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == n
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params == dead.params
    run = MlflowClient(server.uri).get_run(dead.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["optuna.state"] == "FAIL"
    assert "heartbeat" in run.data.tags["error"]
    _check_children(server, exp, study, epochs=3)


@pytest.mark.slow
@needs_postgres
def test_a_tracking_server_restart_mid_study_loses_nothing(
        tmp_path: Path, storage: str, server: TrackingServer) -> None:
    exp, n, epochs = f"restart-{uuid.uuid4().hex[:8]}", 8, 3
    args = _overrides(storage, server, exp, n, "sweep.quick=false", "data.limit_train=3000",
                      "data.val_size=1000", f"train.epochs={epochs}")
    # No client-side HTTP retries: the outage reaches the sweep's own queue (tracking.Outbox).
    with Sweeps(tmp_path, env={**WORKER_ENV, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}) as workers:
        for _ in range(2):  # each pauses before its second trial, its first one done
            workers.start(args, failpoints="trial.start=2:pause")
        workers.paused("trial.start", 2)
        # Paused, the workers still send their first trials' last MLflow calls: wait for them.
        settled = wait_for(lambda: _settled_children(server, exp, storage, FULL, count=2),
                           "the two first trials complete with their MLflow runs closed")
        study = _study(storage, FULL)
        before = _check_runs(server, exp, study, settled, epochs=epochs)
        try:
            server.stop()  # then every MLflow call of the second trials meets the outage
            workers.resume("trial.start")
            wait_for(lambda: workers.said("queued until the tracking server answers"),
                     "a worker to queue an MLflow call while the tracking server is down")
        finally:  # the module's other tests share this server
            server.start()
        results = workers.wait()
    assert all(code == 0 for code, _ in results), results
    output = "\n".join(out for _, out in results)
    assert "all of them were logged later" in output and "could not be logged" not in output
    study = _study(storage, FULL)
    assert sorted(t.number for t in study.trials) == list(range(n))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    after = _check_children(server, exp, study, epochs=epochs)
    assert all(after[k].info.run_id == run.info.run_id for k, run in before.items())
    assert _runs(server, exp, "study")[0].info.status == "FINISHED"


@pytest.mark.parametrize("url", [
    "postgresql://postgres:s3cret@127.0.0.1:5432/no_such_database_here",
    "postgresql://postgres:s3cret@127.0.0.1:1/optuna"])
def test_a_wrong_storage_url_fails_with_one_masked_line(
        workdir: Path, capsys: pytest.CaptureFixture, url: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        sweep.main([f"sweep.storage={url}", f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db",
                    f"data.root={DATA_ROOT}", "sweep.quick=true"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "s3cret" not in err
    assert err.startswith("error: cannot open sweep.storage=postgresql://postgres:***@127.0.0.1:")
    assert "\n" not in err


def test_an_unreachable_tracking_server_fails_fast_before_training(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    uri = f"http://user:s3cret@127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_:
        sweep.main([f"mlflow.tracking_uri={uri}", f"sweep.storage=sqlite:///{workdir}/optuna.db",
                    f"data.root={DATA_ROOT}", "sweep.quick=true"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and time.monotonic() - start < 15  # not MLflow's minutes of retries
    assert err.startswith("error: cannot reach mlflow.tracking_uri=http://user:***@127.0.0.1:")
    assert "s3cret" not in err and "\n" not in err
    assert not (workdir / "optuna.db").exists()  # nothing was created, nothing trained
