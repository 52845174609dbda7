"""A study's finish registers its retrained best model once: a version of the registered model
named after the study with the alias ``best``, found again (never made twice) after a kill -9
in the middle of registering, and not made again by a rerun of the finished study."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments import report
from tests.conftest import DATA_ROOT, forget_storage, load_study
from tests.sweeps import Sweeps

pytestmark = pytest.mark.slow


def _args(tmp: Path, *extra: str) -> list[str]:
    return [f"data.root={DATA_ROOT}", "search=tiny", "data.limit_train=1500", "data.val_size=500",
            "train.epochs=2", "sweep.n_trials=2", "sweep.sampler=random", "sweep.pruner=none",
            f"sweep.storage=sqlite:///{tmp}/optuna.db", f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
            *extra]


def _sweep(tmp: Path, failpoints: str = "") -> tuple[int, str]:
    with Sweeps(tmp) as sweeps:
        sweeps.start(_args(tmp), failpoints=failpoints)
        ((code, out),) = sweeps.wait(timeout=600)
    return code, out


def test_a_kill_while_registering_then_reruns_leave_one_version_with_the_alias(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    code, out = _sweep(tmp_path, "finish.register=1:kill")  # the version made, not yet recorded
    assert code == -signal.SIGKILL and "failpoint finish.register: kill" in out, out
    (made,) = client.search_model_versions("name = 'mlp-sweep'")
    assert not client.get_registered_model("mlp-sweep").aliases

    code, out = _sweep(tmp_path)  # the same command completes the finish
    assert code == 0, out
    (version,) = client.search_model_versions("name = 'mlp-sweep'")
    assert version.version == made.version
    assert "model:     models:/mlp-sweep/1, alias models:/mlp-sweep@best" in out
    assert str(client.get_model_version_by_alias("mlp-sweep", "best").version) == str(version.version)
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = load_study(url)
    forget_storage(url)
    best = study.best_trial
    assert version.tags["study"] == "mlp-sweep" and version.tags["trial"] == str(best.number)
    retrain = client.get_run(version.run_id)
    assert retrain.data.tags["kind"] == "retrain"
    assert version.tags["test_acc"] == f"{retrain.data.metrics['test/acc']:.4f}"
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.data.tags["registered"] == "models:/mlp-sweep/1 (alias best)"
    assert parent.info.status == "FINISHED"

    code, out = _sweep(tmp_path)  # finished: nothing new
    assert code == 0, out
    assert len(client.search_model_versions("name = 'mlp-sweep'")) == 1

    assert report.main(["mlp-sweep", "--storage", url, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                        "--out", str(tmp_path / "report"), "--no-log"]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Registered model: models:/mlp-sweep/1, alias models:/mlp-sweep@best" in text
    assert "#/models/mlp-sweep/versions/1" in text  # its page in the MLflow UI
