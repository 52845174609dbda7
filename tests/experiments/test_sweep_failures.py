"""Sweeps that go wrong: diverging and raising trials leave the study going, too many failures
close it as failed, and bad input (a search space, a store, the data) is refused in one line
before any work, with nothing created."""

import shutil
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from experiments import sweep
from experiments.study import trial
from tests.conftest import DATA_ROOT
from tests.experiments.test_sweep import children, load, overrides, runs


@pytest.mark.slow
def test_diverging_and_raising_trials_leave_the_study_going(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = trial.train_config

    def flaky(cfg, **kwargs):
        if cfg.model.width == 17:
            raise RuntimeError("boom in trial")
        return real(cfg, **kwargs)

    monkeypatch.setattr(trial, "train_config", flaky)
    space = {"optim.lr": "choice(0.3,1e12)", "model.width": "choice(16,17)"}
    args = overrides(workdir, n=4, space=space, extra=("sweep.sampler=grid", "sweep.pruner=none"))
    assert sweep.main(args) == 0
    study = load(workdir)
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    assert len(by_state[TrialState.COMPLETE]) == 1
    diverged = [t for t in by_state[TrialState.PRUNED] if "diverged" in t.user_attrs.get(
        "pruned_reason", "")]
    assert diverged and all(t.params["optim.lr"] == 1e12 for t in diverged)
    failed = by_state[TrialState.FAIL]
    assert failed and all("boom in trial" in t.user_attrs["error"] for t in failed)
    failed_runs = [r for r in children(workdir) if r.data.tags["optuna.state"] == "FAIL"]
    assert failed_runs and all(r.info.status == "FAILED" for r in failed_runs)
    assert all(r.info.run_name.split()[1] == "FAILED" for r in failed_runs)
    pruned_runs = [r for r in children(workdir) if r.data.tags["optuna.state"] == "PRUNED"]
    assert pruned_runs and all(r.info.run_name.split()[1].startswith("diverged@") for r in pruned_runs)


@pytest.mark.slow
def test_too_many_failures_close_the_parent_run_as_failed(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    def broken(cfg, **kwargs):
        raise RuntimeError("boom in every trial")

    monkeypatch.setattr(trial, "train_config", broken)
    with pytest.raises(SystemExit) as info:
        sweep.main(overrides(workdir, n=4, extra=("sweep.max_failures=1",)))
    err = capsys.readouterr().err.strip()
    assert info.value.code == 1 and "sweep.max_failures=1" in err and "\n" not in err
    (parent,) = [r for r in runs(workdir) if r.data.tags.get("kind") == "study"]
    assert parent.info.status == "FAILED" and "boom in every trial" in parent.data.tags["stopped"]
    assert not [r for r in runs(workdir) if r.info.status == "RUNNING"]


@pytest.mark.parametrize(("space", "message"), [
    ({"optim.lr": "interval(0.1,"}, "search key 'optim.lr': cannot parse 'interval(0.1,'"),
    ({"model.widht": "choice(1,2)"}, "key 'model.widht' is not in the config"),
    ({"optim.lr": "interval(0,1)"}, "optim.lr=0.0: must be > 0"),
    ({"optim.lr": "interval(0.1,0.5)"}, "sweep.sampler=grid needs choice(...) or range(...)"),
])
def test_bad_space_exits_2_and_creates_nothing(
        workdir: Path, capsys: pytest.CaptureFixture, space: dict, message: str) -> None:
    with pytest.raises(SystemExit) as info:
        sweep.main(overrides(workdir, n=2, space=space, extra=("sweep.sampler=grid",)))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not (workdir / "optuna.db").exists() and not (workdir / "mlflow.db").exists()


@pytest.mark.parametrize(("store", "message"), [
    ("sweep.storage=postgresql://u:secret@127.0.0.1:1/none",
     "cannot open sweep.storage=postgresql://u:***@"),
    ("sweep.storage='postgresql://u@127.0.0.1:1/none?password=secret'",
     "cannot open sweep.storage=postgresql://u@127.0.0.1:1/none?password=***"),
    ("sweep.storage=sqlite:///{tmp}/missing/optuna.db", "the folder {tmp}/missing does not exist"),
    ("mlflow.tracking_uri=postgresql://u:secret@127.0.0.1:1/none",
     "cannot reach mlflow.tracking_uri=postgresql://u:***@"),
    ("mlflow.tracking_uri=sqlite:///{tmp}/missing/mlflow.db", "the folder {tmp}/missing does not"),
])
def test_an_unusable_store_fails_in_seconds_in_one_line_and_creates_neither_store(
        workdir: Path, capsys: pytest.CaptureFixture, store: str, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        sweep.main(overrides(workdir, n=2) + [store.format(tmp=workdir)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and message.format(tmp=workdir) in err
    assert "secret" not in err and "\n" not in err
    assert time.monotonic() - start < 15  # not MLflow's minutes of connection retries
    assert not (workdir / "optuna.db").exists() and not (workdir / "mlflow.db").exists()


def test_corrupt_data_is_found_once_before_the_study_starts(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    raw = workdir / "copy" / "FashionMNIST" / "raw"
    shutil.copytree(Path(DATA_ROOT) / "FashionMNIST" / "raw", raw)
    images = raw / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[5000] ^= 0xFF  # one pixel of one image
    images.write_bytes(bytes(data))
    args = [a for a in overrides(workdir, n=3) if not a.startswith("data.root=")]
    with pytest.raises(SystemExit) as info:
        sweep.main([*args, f"data.root={workdir / 'copy'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "train-images-idx3-ubyte is corrupt" in err and "\n" not in err
    assert not (workdir / "optuna.db").exists() and not (workdir / "mlflow.db").exists()
